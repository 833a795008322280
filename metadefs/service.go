// Package metadefs implements imaged.MetadefService: Glance 25.1's metadata
// definitions catalog (namespaces with their objects, properties, tags and
// resource type associations) over an imaged.MetadefStore, with Glance's
// visibility, protection and policy rules and its messages.
package metadefs

import (
	"context"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// metadefPolicy is implemented by policies that decide metadef actions
// (policy.Rules). A policy without it decides them through Allow.
type metadefPolicy interface {
	AllowMetadef(id *imaged.Identity, action imaged.Action, t imaged.PolicyTarget) bool
}

// Service is the metadefs catalog. It holds no mutable state.
type Service struct {
	store imaged.MetadefStore
	pol   imaged.Policy
	clock imaged.Clock
}

var _ imaged.MetadefService = (*Service)(nil)

// New returns a catalog over store governed by pol; clock nil = the system
// clock.
func New(store imaged.MetadefStore, pol imaged.Policy, clock imaged.Clock) *Service {
	if clock == nil {
		clock = imaged.SystemClock{}
	}
	return &Service{store: store, pol: pol, clock: clock}
}

func (s *Service) allow(id *imaged.Identity, a imaged.Action, t imaged.PolicyTarget) bool {
	if mp, ok := s.pol.(metadefPolicy); ok {
		return mp.AllowMetadef(id, a, t)
	}
	return s.pol.Allow(id, a, t)
}

func nsTarget(ns *imaged.MetadefNamespace) imaged.PolicyTarget {
	return imaged.PolicyTarget{Owner: ns.Owner, Visibility: ns.Visibility}
}

func callerTarget(id *imaged.Identity) imaged.PolicyTarget {
	t := imaged.PolicyTarget{}
	if id != nil {
		t.Owner = id.ProjectID
	}
	return t
}

// visible is Glance's _is_namespace_visible (its database layer's check).
func (s *Service) visible(id *imaged.Identity, ns *imaged.MetadefNamespace) bool {
	if s.pol.IsAdmin(id) || ns.Owner == "" || ns.Visibility == imaged.VisibilityPublic {
		return true
	}
	return id != nil && id.ProjectID != "" && id.ProjectID == ns.Owner
}

// deny is Glance's MetadefAPIPolicy refusal of action on target: a 404
// without message when the caller may not even get a namespace there (for
// actions without a namespace: in its own project), else a 403.
func (s *Service) deny(id *imaged.Identity, action imaged.Action, t imaged.PolicyTarget) error {
	if action == imaged.ActionGetMetadefNamespace || !s.allow(id, imaged.ActionGetMetadefNamespace, t) {
		return imaged.Errorf(imaged.ENOTFOUND, "")
	}
	return forbidden(action)
}

// forbidden is Glance's policy refusal.
func forbidden(a imaged.Action) error {
	return imaged.Errorf(imaged.EFORBIDDEN, "You are not authorized to complete %s action.", a)
}

// namespace fetches a namespace the caller may see. A namespace hidden by
// visibility is "not found" (Glance's handlers turn its database's
// MetadefForbidden into a 404); notFound, when not nil, words that 404 and
// the one of a missing namespace.
func (s *Service) namespace(ctx context.Context, name string, notFound func(string) error) (*imaged.MetadefNamespace, error) {
	id := imaged.IdentityFromContext(ctx)
	ns, err := s.store.GetMetadefNamespace(ctx, name)
	if err == nil && !s.visible(id, ns) {
		err = imaged.Errorf(imaged.ENOTFOUND, "Metadata definition namespace=%s was not found.", name)
	}
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND && notFound != nil {
			return nil, notFound(name)
		}
		return nil, err
	}
	return ns, nil
}

// nsNotFoundShort is the message of the handlers that word it themselves.
func nsNotFoundShort(name string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "Namespace %s not found", name)
}

// writable fetches a namespace for a change of action: a namespace the
// caller cannot see is ENOTFOUND, one it can see but not change EFORBIDDEN.
func (s *Service) writable(ctx context.Context, name string, notFound func(string) error, actions ...imaged.Action) (*imaged.MetadefNamespace, error) {
	id := imaged.IdentityFromContext(ctx)
	ns, err := s.namespace(ctx, name, notFound)
	if err != nil {
		return nil, err
	}
	for _, a := range actions {
		if !s.allow(id, a, nsTarget(ns)) {
			return nil, s.deny(id, a, nsTarget(ns))
		}
	}
	return ns, nil
}

// ListNamespaces implements imaged.MetadefService.
func (s *Service) ListNamespaces(ctx context.Context, q imaged.MetadefNamespaceQuery) ([]*imaged.MetadefNamespace, error) {
	id := imaged.IdentityFromContext(ctx)
	for _, a := range []imaged.Action{imaged.ActionGetMetadefNamespaces, imaged.ActionListMetadefResourceType} {
		if !s.allow(id, a, callerTarget(id)) {
			return nil, s.deny(id, a, callerTarget(id))
		}
	}
	q.Scope, q.ScopeNone = "", false
	if !s.pol.IsAdmin(id) {
		if id == nil || id.ProjectID == "" {
			q.ScopeNone = true
		} else {
			q.Scope = id.ProjectID
		}
	}
	if q.Marker != "" {
		m, err := s.store.GetMetadefNamespace(ctx, q.Marker)
		if err != nil {
			return nil, err
		}
		if !s.visible(id, m) {
			// Glance's listing passes its database's refusal on.
			return nil, imaged.Errorf(imaged.EFORBIDDEN, "Forbidding request, metadata definition namespace=%s is not visible.", q.Marker)
		}
	}
	list, err := s.store.ListMetadefNamespaces(ctx, q)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, ns := range list {
		if s.allow(id, imaged.ActionGetMetadefNamespace, nsTarget(ns)) {
			out = append(out, ns)
		}
	}
	return out, nil
}

// CreateNamespace implements imaged.MetadefService. It is not one
// transaction (neither is Glance's): a failure after the namespace was
// created deletes it again.
func (s *Service) CreateNamespace(ctx context.Context, in *imaged.MetadefNamespaceInput) (*imaged.MetadefNamespaceDetail, error) {
	id := imaged.IdentityFromContext(ctx)
	t := callerTarget(id)
	checks := []struct {
		need bool
		a    imaged.Action
	}{
		{true, imaged.ActionAddMetadefNamespace},
		{len(in.ResourceTypeAssociations) > 0, imaged.ActionAddMetadefRTAssociation},
		{len(in.Objects) > 0, imaged.ActionAddMetadefObject},
		{len(in.Properties) > 0, imaged.ActionAddMetadefProperty},
		{len(in.Tags) > 0, imaged.ActionAddMetadefTag},
	}
	for _, c := range checks {
		if c.need && !s.allow(id, c.a, t) {
			return nil, s.deny(id, c.a, t)
		}
	}
	if in.Namespace.Owner == "" && id != nil {
		in.Namespace.Owner = id.ProjectID
	}
	return s.create(ctx, in, false)
}

// create stores a namespace with its definitions, without policy checks.
// A loaded one has no updated_at, as glance-manage leaves it.
func (s *Service) create(ctx context.Context, in *imaged.MetadefNamespaceInput, loaded bool) (*imaged.MetadefNamespaceDetail, error) {
	ns := in.Namespace
	if ns.Visibility == "" {
		ns.Visibility = imaged.VisibilityPrivate
	}
	now := s.clock.Now()
	upd := now
	if loaded {
		upd = time.Time{}
	}
	ns.CreatedAt, ns.UpdatedAt = now, upd
	ns.ResourceTypeAssociations = nil
	if err := s.store.CreateMetadefNamespace(ctx, &ns); err != nil {
		return nil, err
	}
	cleanup := func(err error) (*imaged.MetadefNamespaceDetail, error) {
		_ = s.store.DeleteMetadefNamespace(context.WithoutCancel(ctx), ns.Namespace)
		return nil, err
	}
	for _, a := range in.ResourceTypeAssociations {
		ac := *a
		ac.CreatedAt, ac.UpdatedAt = now, upd
		if err := s.store.AssociateMetadefResourceType(ctx, ns.Namespace, &ac); err != nil {
			return cleanup(err)
		}
	}
	var items []*imaged.MetadefItem
	for _, o := range in.Objects {
		oc := *o
		oc.CreatedAt, oc.UpdatedAt = now, upd
		it, err := oc.Item()
		if err != nil {
			return cleanup(err)
		}
		items = append(items, it)
	}
	if err := s.store.CreateMetadefItems(ctx, ns.Namespace, imaged.MetadefObjectKind, items, false); err != nil {
		return cleanup(err)
	}
	items = items[:0]
	for _, tg := range in.Tags {
		items = append(items, (&imaged.MetadefTag{Name: tg.Name, CreatedAt: now, UpdatedAt: upd}).Item())
	}
	if err := s.store.CreateMetadefItems(ctx, ns.Namespace, imaged.MetadefTagKind, items, false); err != nil {
		return cleanup(err)
	}
	items = items[:0]
	for _, p := range in.Properties {
		it := p.Item()
		it.CreatedAt, it.UpdatedAt = now, upd
		items = append(items, it)
	}
	if err := s.store.CreateMetadefItems(ctx, ns.Namespace, imaged.MetadefPropertyKind, items, false); err != nil {
		return cleanup(err)
	}
	// Glance answers with what was asked: the namespace's attributes and
	// the request's definitions (not re-read, no timestamps on them).
	d := &imaged.MetadefNamespaceDetail{Namespace: &ns, Objects: in.Objects, Properties: in.Properties, Tags: in.Tags}
	ns.ResourceTypeAssociations = in.ResourceTypeAssociations
	return d, nil
}

// GetNamespace implements imaged.MetadefService.
func (s *Service) GetNamespace(ctx context.Context, name, resourceType string) (*imaged.MetadefNamespaceDetail, error) {
	id := imaged.IdentityFromContext(ctx)
	ns, err := s.store.GetMetadefNamespace(ctx, name)
	if err != nil {
		return nil, err
	}
	// A namespace hidden by visibility is a 404 without message here.
	if !s.visible(id, ns) || !s.allow(id, imaged.ActionGetMetadefNamespace, nsTarget(ns)) {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "")
	}
	for _, a := range []imaged.Action{imaged.ActionListMetadefResourceType, imaged.ActionGetMetadefObjects,
		imaged.ActionGetMetadefProperties, imaged.ActionGetMetadefTags} {
		if !s.allow(id, a, nsTarget(ns)) {
			return nil, forbidden(a)
		}
	}
	d := &imaged.MetadefNamespaceDetail{Namespace: ns}
	if d.Objects, err = s.listObjects(ctx, name); err != nil {
		return nil, err
	}
	if d.Properties, err = s.listProperties(ctx, name); err != nil {
		return nil, err
	}
	if d.Tags, err = s.listTags(ctx, name); err != nil {
		return nil, err
	}
	if prefix := prefixFor(ns, resourceType); prefix != "" {
		for i, p := range d.Properties {
			pc := *p
			pc.Name = prefix + p.Name
			d.Properties[i] = &pc
		}
		// Glance prefixes the objects' properties and required lists too.
		for i, o := range d.Objects {
			oc := *o
			oc.Properties = prefixKeys(o.Properties, prefix)
			if len(o.Required) > 0 {
				oc.Required = make([]string, len(o.Required))
				for j, r := range o.Required {
					oc.Required[j] = prefix + r
				}
			}
			d.Objects[i] = &oc
		}
	}
	return d, nil
}

// prefixFor returns the prefix of ns's association with resourceType.
func prefixFor(ns *imaged.MetadefNamespace, resourceType string) string {
	if resourceType == "" {
		return ""
	}
	for _, a := range ns.ResourceTypeAssociations {
		if a.Name == resourceType {
			return a.Prefix
		}
	}
	return ""
}

// UpdateNamespace implements imaged.MetadefService: the request replaces
// every attribute; visibility, protected and owner default as on create.
func (s *Service) UpdateNamespace(ctx context.Context, name string, in *imaged.MetadefNamespace) (*imaged.MetadefNamespace, error) {
	id := imaged.IdentityFromContext(ctx)
	ns, err := s.writable(ctx, name, nsNotFoundShort, imaged.ActionModifyMetadefNamespace)
	if err != nil {
		return nil, err
	}
	up := *in
	up.CreatedAt = ns.CreatedAt
	up.UpdatedAt = s.clock.Now()
	if up.Visibility == "" {
		up.Visibility = imaged.VisibilityPrivate
	}
	if up.Owner == "" && id != nil {
		up.Owner = id.ProjectID
	}
	if err := s.store.UpdateMetadefNamespace(ctx, name, &up); imaged.ErrorCode(err) == imaged.ECONFLICT {
		return nil, imaged.Errorf(imaged.ECONFLICT, "Invalid update. It would result in a duplicate metadata definition namespace with the same name of %s", up.Namespace)
	} else if err != nil {
		return nil, err
	}
	return s.store.GetMetadefNamespace(ctx, up.Namespace)
}

func protectedNS(ns *imaged.MetadefNamespace) error {
	return imaged.Errorf(imaged.EFORBIDDEN, "Metadata definition namespace %s is protected and cannot be deleted.", ns.Namespace)
}

// DeleteNamespace implements imaged.MetadefService.
func (s *Service) DeleteNamespace(ctx context.Context, name string) error {
	ns, err := s.writable(ctx, name, nsNotFoundShort, imaged.ActionDeleteMetadefNamespace)
	if err != nil {
		return err
	}
	if ns.Protected {
		return protectedNS(ns)
	}
	return s.store.DeleteMetadefNamespace(ctx, name)
}

// deleteAll is DELETE of all objects, properties or tags: Glance checks
// delete_metadef_namespace and the namespace's protection.
func (s *Service) deleteAll(ctx context.Context, name string, kind imaged.MetadefKind, extra ...imaged.Action) error {
	ns, err := s.writable(ctx, name, nsNotFoundShort, append([]imaged.Action{imaged.ActionDeleteMetadefNamespace}, extra...)...)
	if err != nil {
		return err
	}
	if ns.Protected {
		return protectedNS(ns)
	}
	return s.store.DeleteMetadefItems(ctx, name, kind)
}

// prefixKeys returns a JSON object with every key prefixed.
func prefixKeys(obj []byte, prefix string) []byte {
	m, keys, err := decodeOrdered(obj)
	if err != nil || len(keys) == 0 {
		return obj
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := jsonString(prefix + k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(m[k])
	}
	b.WriteByte('}')
	return []byte(b.String())
}
