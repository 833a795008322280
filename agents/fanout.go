package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// Reasons of task errors besides the agent's own (imaged.AgentReason*).
const (
	ReasonOffline      = "offline"
	ReasonTimeout      = "timeout"
	ReasonUnreachable  = "unreachable"
	ReasonRejected     = "rejected"
	ReasonAgentError   = "agent_error"
	ReasonUnknownAgent = "unknown_agent"
	ReasonUnknownImage = "unknown_image"
	ReasonResolveError = "resolve_error"
)

type operation struct {
	taskType string
	action   string // audit action
	path     string // the agent API's endpoint
	listKey  string // the result's per-agent list
}

var (
	opPurge   = operation{imaged.TaskTypeAgentPurge, "agents.purge", "/v1/images/purge", "purged_images"}
	opPreload = operation{imaged.TaskTypeAgentPreload, "agents.preload", "/v1/images/preload", "preloaded_images"}
)

// PurgeImages implements imaged.AgentService.
func (s *Service) PurgeImages(ctx context.Context, req imaged.AgentImagesRequest) (*imaged.Task, error) {
	return s.start(ctx, opPurge, req)
}

// PreloadImages implements imaged.AgentService; force and noprune are
// ignored.
func (s *Service) PreloadImages(ctx context.Context, req imaged.AgentImagesRequest) (*imaged.Task, error) {
	return s.start(ctx, opPreload, req)
}

// ValidateRequest checks a purge or preload request's shape.
func ValidateRequest(req *imaged.AgentImagesRequest) error {
	if len(req.Keys) == 0 {
		return imaged.Errorf(imaged.EINVALID, "keys must name at least one agent")
	}
	if len(req.Keys) > MaxKeys {
		return imaged.Errorf(imaged.EINVALID, "keys may name at most %d agents", MaxKeys)
	}
	seen := map[string]bool{}
	for i, k := range req.Keys {
		if !ValidAgentID(k.AgentID) {
			return imaged.Errorf(imaged.EINVALID, "keys[%d].agent_id %q is not an agent id", i, k.AgentID)
		}
		if seen[k.AgentID] {
			return imaged.Errorf(imaged.EINVALID, "agent %q appears twice in keys", k.AgentID)
		}
		seen[k.AgentID] = true
		if len(k.Images) == 0 || len(k.Images) > MaxImagesPerKey {
			return imaged.Errorf(imaged.EINVALID, "keys[%d].images must name 1 to %d images", i, MaxImagesPerKey)
		}
		for j, im := range k.Images {
			if im.Name == "" || len(im.Name) > 512 {
				return imaged.Errorf(imaged.EINVALID, "keys[%d].images[%d].name must be a reference or alias of 1 to 512 characters", i, j)
			}
			if len(im.Architecture) > 32 {
				return imaged.Errorf(imaged.EINVALID, "keys[%d].images[%d].architecture is too long", i, j)
			}
		}
	}
	return nil
}

func (s *Service) start(ctx context.Context, op operation, req imaged.AgentImagesRequest) (t *imaged.Task, err error) {
	detail := map[string]any{"agents": len(req.Keys), "force": req.Force, "noprune": req.NoPrune}
	target := ""
	defer func() {
		if t != nil {
			target = t.ID
			detail["task_id"] = t.ID
		}
		s.audit(ctx, op.action, target, err, detail)
	}()
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	if err := ValidateRequest(&req); err != nil {
		return nil, err
	}
	input, err := toMap(req)
	if err != nil {
		return nil, err
	}
	return s.cfg.Tasks.Start(ctx, imaged.TaskSpec{Type: op.taskType, Input: input, Timeout: s.cfg.TaskTimeout},
		func(ctx context.Context, r imaged.TaskReporter) (map[string]any, error) {
			return s.run(ctx, r, op, req)
		})
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("agents: encode: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("agents: encode: %w", err)
	}
	return m, nil
}

// ItemError is one failure of a fan-out task: an agent (Image "" = the
// whole agent) or one image on it.
type ItemError struct {
	AgentID      string `json:"agent_id"`
	Image        string `json:"image,omitempty"` // the name as requested
	Architecture string `json:"architecture,omitempty"`
	Reference    string `json:"reference,omitempty"` // the canonical reference it resolved to
	Reason       string `json:"reason"`
	Message      string `json:"message"`
}

// ImageOutcome is one image purged or preloaded on an agent.
type ImageOutcome struct {
	Reference    string `json:"reference"`
	Architecture string `json:"architecture"`
	BytesFreed   int64  `json:"bytes_freed,omitempty"`
	Digest       string `json:"digest,omitempty"`
	Size         int64  `json:"size,omitempty"`
}

// AgentOutcome is one agent's entry in a task's result.
type AgentOutcome struct {
	AgentID    string         `json:"agent_id"`
	Images     []ImageOutcome `json:"-"`
	BytesFreed int64          `json:"bytes_freed"`
	OK         bool           `json:"ok"` // the agent answered
	errs       []ItemError
	update     *imaged.AgentImagesUpdate // the inventory edit its answer calls for
}

type resolved struct {
	ref, arch string
	err       error
}

// run is the task: resolve names, then contact the agents through a
// bounded pool of workers.
func (s *Service) run(ctx context.Context, r imaged.TaskReporter, op operation, req imaged.AgentImagesRequest) (map[string]any, error) {
	names := map[imaged.AgentImageName]resolved{}
	for _, k := range req.Keys {
		for _, n := range k.Images {
			if _, done := names[n]; done {
				continue
			}
			if strings.HasPrefix(n.Name, imaged.AgentVMScheme) {
				// A VM image held by agents' dir runtimes: named by its
				// catalog id, checked against the catalog when one is
				// configured.
				names[n] = s.resolveVM(ctx, n)
				continue
			}
			img, err := s.cfg.Resolver.ResolveContainerImage(ctx, n.Name, n.Architecture)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				names[n] = resolved{err: err}
				continue
			}
			names[n] = resolved{ref: img.Reference, arch: img.Architecture}
		}
	}
	list, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, fmt.Errorf("agents: list agents: %w", err)
	}
	known := make(map[string]*imaged.Agent, len(list))
	for _, a := range list {
		known[a.ID] = a
	}
	r.AddTotal(int64(len(req.Keys)))
	outcomes := make([]AgentOutcome, len(req.Keys))
	// Inventory edits go through one writer that batches them: a
	// transaction per agent would make a large fan-out wait on the
	// database rather than on its agents.
	edits := make(chan imaged.AgentImagesUpdate, 256)
	written := make(chan struct{})
	go func() {
		defer close(written)
		s.writeInventory(context.WithoutCancel(ctx), edits)
	}()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(s.cfg.Concurrency, len(req.Keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				k := req.Keys[i]
				outcomes[i] = s.agentJob(ctx, op, req, k, known[k.AgentID], names)
				if u := outcomes[i].update; u != nil {
					edits <- *u
				}
				for _, e := range outcomes[i].errs {
					if e.Image != "" {
						r.Error("agent %s: image %s (%s): %s: %s", e.AgentID, e.Image, e.Architecture, e.Reason, e.Message)
					} else {
						r.Error("agent %s: %s: %s", e.AgentID, e.Reason, e.Message)
					}
				}
				r.Done(1)
			}
		}()
	}
feed:
	for i := range req.Keys {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(edits)
	<-written
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	perAgent := make([]map[string]any, 0, len(outcomes))
	errs := []ItemError{}
	var total int64
	ok := 0
	for _, o := range outcomes {
		imgs := o.Images
		if imgs == nil {
			imgs = []ImageOutcome{}
		}
		perAgent = append(perAgent, map[string]any{"agent_id": o.AgentID, op.listKey: imgs, "bytes_freed": o.BytesFreed, "ok": o.OK})
		errs = append(errs, o.errs...)
		total += o.BytesFreed
		if o.OK {
			ok++
		}
	}
	res, err := toMap(map[string]any{op.listKey: perAgent, "errors": errs, "bytes_freed": total,
		"agents": map[string]int{"total": len(outcomes), "answered": ok, "failed": len(outcomes) - ok}})
	if err != nil {
		return nil, err
	}
	s.audit(ctx, op.action+".result", r.ID(), nil, map[string]any{"bytes_freed": total, "errors": len(errs), "agents": len(outcomes)})
	return res, nil
}

// writeInventory applies the edits it receives, in batches of what has
// arrived meanwhile (at most 256 per transaction), until edits is closed.
func (s *Service) writeInventory(ctx context.Context, edits <-chan imaged.AgentImagesUpdate) {
	for u := range edits {
		batch := []imaged.AgentImagesUpdate{u}
	more:
		for len(batch) < 256 {
			select {
			case u, ok := <-edits:
				if !ok {
					break more
				}
				batch = append(batch, u)
			default:
				break more
			}
		}
		if err := s.store.UpdateAgentImages(ctx, batch...); err != nil {
			s.log.Warn("agents: inventory update failed", "agents", len(batch), "err", err)
		}
	}
}

// agentJob handles one agent of the request.
func (s *Service) agentJob(ctx context.Context, op operation, req imaged.AgentImagesRequest, k imaged.AgentImagesKey,
	a *imaged.Agent, names map[imaged.AgentImageName]resolved) AgentOutcome {
	out := AgentOutcome{AgentID: k.AgentID}
	agentErr := func(reason, format string, args ...any) {
		out.errs = append(out.errs, ItemError{AgentID: k.AgentID, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	var specs []imaged.AgentImageSpec
	asked := map[imaged.AgentImageKey]imaged.AgentImageName{}
	for _, n := range k.Images {
		res := names[n]
		if res.err != nil {
			reason := ReasonUnknownImage
			if imaged.ErrorCode(res.err) != imaged.ENOTFOUND {
				reason = ReasonResolveError
			}
			out.errs = append(out.errs, ItemError{AgentID: k.AgentID, Image: n.Name, Architecture: n.Architecture,
				Reason: reason, Message: imaged.ErrorMessage(res.err)})
			continue
		}
		key := imaged.AgentImageKey{Reference: res.ref, Architecture: res.arch}
		if _, dup := asked[key]; dup {
			continue // an alias and its reference name the same image
		}
		asked[key] = n
		specs = append(specs, imaged.AgentImageSpec{Reference: res.ref, Architecture: res.arch})
	}
	switch {
	case a == nil:
		agentErr(ReasonUnknownAgent, "agent %s is not registered", k.AgentID)
		return out
	case status(a, s.clock.Now()) == imaged.AgentOffline:
		agentErr(ReasonOffline, "agent %s is offline: no heartbeat since %s", k.AgentID, a.LastHeartbeat.UTC().Format(time.RFC3339))
		return out
	case len(specs) == 0:
		return out
	}
	digest, err := s.expectedDigest(ctx, k.AgentID)
	if err != nil {
		agentErr(ReasonRejected, "no token is known for agent %s", k.AgentID)
		return out
	}
	var body any = imaged.AgentPreloadRequest{Images: specs}
	if op == opPurge {
		body = imaged.AgentPurgeRequest{Images: specs, Force: req.Force, NoPrune: req.NoPrune}
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AgentTimeout)
	defer cancel()
	var answer struct {
		Results []struct {
			imaged.AgentPurgeResult
			Pulled bool   `json:"pulled"`
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"results"`
	}
	if reason, msg := s.call(actx, a.Addr+op.path, digest, body, &answer); reason != "" {
		if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			reason, msg = ReasonTimeout, fmt.Sprintf("agent %s did not answer within %s", k.AgentID, s.cfg.AgentTimeout)
		}
		agentErr(reason, "%s", msg)
		return out
	}
	out.OK = true
	var remove []imaged.AgentImageKey
	var add []imaged.AgentImage
	for _, res := range answer.Results {
		key := imaged.AgentImageKey{Reference: res.Reference, Architecture: imaged.NormalizeArch(res.Architecture)}
		n, ok := asked[key]
		if !ok {
			continue // not something we asked for
		}
		delete(asked, key)
		switch {
		case op == opPurge && res.Purged:
			out.Images = append(out.Images, ImageOutcome{Reference: key.Reference, Architecture: key.Architecture, BytesFreed: res.BytesFreed})
			out.BytesFreed += res.BytesFreed
			remove = append(remove, key)
		case op == opPreload && res.Pulled:
			out.Images = append(out.Images, ImageOutcome{Reference: key.Reference, Architecture: key.Architecture, Digest: res.Digest, Size: res.Size})
			add = append(add, imaged.AgentImage{Reference: key.Reference, Architecture: key.Architecture, Digest: res.Digest, Size: res.Size})
		default:
			reason := res.Reason
			if reason == "" {
				reason = imaged.AgentReasonRuntimeError
			}
			if op == opPurge && reason == imaged.AgentReasonNotPresent {
				remove = append(remove, key) // the inventory was stale
			}
			out.errs = append(out.errs, ItemError{AgentID: k.AgentID, Image: n.Name, Architecture: n.Architecture,
				Reference: key.Reference, Reason: reason, Message: res.Error})
		}
	}
	for key, n := range asked {
		out.errs = append(out.errs, ItemError{AgentID: k.AgentID, Image: n.Name, Architecture: n.Architecture,
			Reference: key.Reference, Reason: ReasonAgentError, Message: "the agent's answer left this image out"})
	}
	if len(remove) > 0 || len(add) > 0 {
		out.update = &imaged.AgentImagesUpdate{AgentID: k.AgentID, Remove: remove, Add: add}
	}
	return out
}

// call POSTs body to an agent and decodes its answer; it returns a
// reason and message on failure.
func (s *Service) call(ctx context.Context, url, digest string, body, answer any) (reason, msg string) {
	b, err := json.Marshal(body)
	if err != nil {
		return ReasonAgentError, "cannot encode the request"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return ReasonUnreachable, "the agent's address is not usable"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Agent-Token", digest)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ReasonTimeout, "timed out"
		}
		return ReasonUnreachable, fmt.Sprintf("cannot reach the agent: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		if ctx.Err() != nil {
			return ReasonTimeout, "timed out"
		}
		return ReasonUnreachable, fmt.Sprintf("the agent's answer broke off: %v", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return ReasonRejected, "the agent refused the service's credentials"
	case resp.StatusCode != http.StatusOK:
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		m := resp.Status
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			m += ": " + e.Error.Message
		}
		return ReasonAgentError, "the agent answered " + m
	}
	if err := json.Unmarshal(raw, answer); err != nil {
		return ReasonAgentError, "the agent's answer is not valid JSON"
	}
	return "", ""
}

// resolveVM checks a glance://<id> name: a UUID, and, when the service
// has the catalog's images (Config.VMImages), a live image; the agent
// verifies the bytes itself when it pulls.
func (s *Service) resolveVM(ctx context.Context, n imaged.AgentImageName) resolved {
	id := strings.ToLower(strings.TrimPrefix(n.Name, imaged.AgentVMScheme))
	if !validUUID(id) {
		return resolved{err: imaged.Errorf(imaged.EINVALID, "%q is not glance://<image id>", n.Name)}
	}
	arch := imaged.NormalizeArch(n.Architecture)
	if s.cfg.VMImages != nil {
		img, err := s.cfg.VMImages.GetImage(ctx, id)
		if err != nil {
			if imaged.ErrorCode(err) == imaged.ENOTFOUND {
				return resolved{err: imaged.Errorf(imaged.ENOTFOUND, "no VM image %s", id)}
			}
			return resolved{err: err}
		}
		if arch == "" {
			arch = imaged.NormalizeArch(img.Properties["architecture"])
		}
	}
	return resolved{ref: imaged.AgentVMScheme + id, arch: arch}
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}
