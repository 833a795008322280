package agentapi

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/imaged/imaged"
)

type agentJSON struct {
	ID               string              `json:"id"`
	Addr             string              `json:"addr"`
	Runtime          string              `json:"runtime"`
	Version          string              `json:"version"`
	Status           string              `json:"status"`
	HeartbeatSeconds float64             `json:"heartbeat_seconds"`
	RegisteredAt     time.Time           `json:"registered_at"`
	LastHeartbeat    time.Time           `json:"last_heartbeat"`
	ImageCount       int                 `json:"image_count"`
	ImagesSize       int64               `json:"images_size"`
	Images           []imaged.AgentImage `json:"images,omitempty"`
}

func renderAgent(a *imaged.Agent, withImages bool) agentJSON {
	j := agentJSON{ID: a.ID, Addr: a.Addr, Runtime: a.Runtime, Version: a.Version, Status: string(a.Status),
		HeartbeatSeconds: a.HeartbeatInterval.Seconds(), RegisteredAt: a.RegisteredAt.UTC(), LastHeartbeat: a.LastHeartbeat.UTC(),
		ImageCount: a.ImageCount, ImagesSize: a.ImagesSize}
	if withImages {
		j.Images = a.Images
		if j.Images == nil {
			j.Images = []imaged.AgentImage{}
		}
	}
	return j
}

type taskJSON struct {
	ID        string              `json:"id"`
	Type      string              `json:"type"`
	Status    string              `json:"status"`
	Progress  imaged.TaskProgress `json:"progress"`
	Result    map[string]any      `json:"result"`
	Errors    []string            `json:"errors"`
	Message   *string             `json:"message"`
	CreatedAt time.Time           `json:"created_at"`
	UpdatedAt time.Time           `json:"updated_at"`
}

// renderTask is nativeapi's task shape, so that a client reads the task
// it got here and GET /api/v1/tasks/{id} alike.
func renderTask(t *imaged.Task) taskJSON {
	errs := t.Errors
	if errs == nil {
		errs = []string{}
	}
	var msg *string
	if t.Message != "" {
		msg = &t.Message
	}
	return taskJSON{ID: t.ID, Type: t.Type, Status: string(t.Status), Progress: t.Progress, Result: t.Result,
		Errors: errs, Message: msg, CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.ListAgents(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]agentJSON, len(list))
	online := 0
	for i, ag := range list {
		out[i] = renderAgent(ag, false)
		if ag.Status == imaged.AgentOnline {
			online++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out, "total": len(out), "online": online})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	ag, err := a.svc.GetAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, renderAgent(ag, true))
}

func (a *api) putToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token  string `json:"token"`
		SHA256 string `json:"sha256"`
	}
	if err := a.decode(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if (body.Token == "") == (body.SHA256 == "") {
		a.writeError(w, r, imaged.Errorf(imaged.EINVALID, "give exactly one of token and sha256"))
		return
	}
	var err error
	if body.Token != "" {
		err = a.svc.RegisterAgentToken(r.Context(), r.PathValue("id"), body.Token, false)
	} else {
		err = a.svc.RegisterAgentToken(r.Context(), r.PathValue("id"), body.SHA256, true)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) beat(w http.ResponseWriter, r *http.Request) {
	var reg imaged.AgentRegistration
	data, err := a.read(w, r)
	if err == nil {
		reg, err = DecodeRegistration(data)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	reg.AgentID = r.PathValue("id")
	ag, err := a.svc.Register(r.Context(), r.Header.Get("X-Agent-Token"), reg)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": ag.ID, "status": ag.Status, "last_heartbeat": ag.LastHeartbeat.UTC()})
}

// read reads a JSON body (media type and size checked).
func (a *api) read(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var raw rawBody
	if err := a.decode(w, r, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// rawBody keeps a body as it is, after decode's checks.
type rawBody []byte

func (b *rawBody) UnmarshalJSON(data []byte) error {
	*b = append((*b)[:0], data...)
	return nil
}

func (a *api) fanOut(start func(context.Context, imaged.AgentImagesRequest) (*imaged.Task, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := a.read(w, r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		req, err := DecodeImagesRequest(data)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		t, err := start(r.Context(), req)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/api/v1/tasks/"+url.PathEscape(t.ID))
		writeJSON(w, http.StatusAccepted, renderTask(t))
	}
}
