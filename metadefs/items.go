package metadefs

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/imaged/imaged"
)

// decodeOrdered decodes a JSON object keeping its key order.
func decodeOrdered(obj []byte) (map[string]json.RawMessage, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, imaged.Errorf(imaged.EINVALID, "not a JSON object")
	}
	m := map[string]json.RawMessage{}
	var keys []string
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		if _, dup := m[k]; !dup {
			keys = append(keys, k)
		}
		m[k] = v
	}
	return m, keys, nil
}

func jsonString(s string) ([]byte, error) { return json.Marshal(s) }

func (s *Service) listObjects(ctx context.Context, ns string) ([]*imaged.MetadefObject, error) {
	items, err := s.store.ListMetadefItems(ctx, ns, imaged.MetadefObjectKind)
	if err != nil {
		return nil, err
	}
	out := make([]*imaged.MetadefObject, 0, len(items))
	for _, it := range items {
		o, err := imaged.MetadefObjectFromItem(it)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (s *Service) listProperties(ctx context.Context, ns string) ([]*imaged.MetadefProperty, error) {
	items, err := s.store.ListMetadefItems(ctx, ns, imaged.MetadefPropertyKind)
	if err != nil {
		return nil, err
	}
	out := make([]*imaged.MetadefProperty, 0, len(items))
	for _, it := range items {
		out = append(out, imaged.MetadefPropertyFromItem(it))
	}
	return out, nil
}

func (s *Service) listTags(ctx context.Context, ns string) ([]*imaged.MetadefTag, error) {
	items, err := s.store.ListMetadefItems(ctx, ns, imaged.MetadefTagKind)
	if err != nil {
		return nil, err
	}
	out := make([]*imaged.MetadefTag, 0, len(items))
	for _, it := range items {
		out = append(out, imaged.MetadefTagFromItem(it))
	}
	return out, nil
}

// ListObjects implements imaged.MetadefService.
func (s *Service) ListObjects(ctx context.Context, ns string) ([]*imaged.MetadefObject, error) {
	if _, err := s.objChild(ctx, ns, imaged.ActionGetMetadefObjects); err != nil {
		return nil, err
	}
	return s.listObjects(ctx, ns)
}

// child fetches the namespace of a definition request: one hidden by
// visibility is "Namespace %s not found", then action is checked as
// Glance's MetadefAPIPolicy does (a 404 without message when the caller
// may not even get the namespace).
func (s *Service) child(ctx context.Context, name string, action imaged.Action) (*imaged.MetadefNamespace, error) {
	return s.childOf(ctx, name, action, false)
}

// objChild is child for the objects routes, where a missing namespace has
// the database's message ("Metadata definition namespace=X was not
// found."), as Glance's objects controller lets it through.
func (s *Service) objChild(ctx context.Context, name string, action imaged.Action) (*imaged.MetadefNamespace, error) {
	return s.childOf(ctx, name, action, true)
}

func (s *Service) childOf(ctx context.Context, name string, action imaged.Action, storeMsg bool) (*imaged.MetadefNamespace, error) {
	id := imaged.IdentityFromContext(ctx)
	ns, err := s.store.GetMetadefNamespace(ctx, name)
	if err != nil {
		if !storeMsg && imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, nsNotFoundShort(name)
		}
		return nil, err
	}
	if !s.visible(id, ns) {
		return nil, nsNotFoundShort(name)
	}
	if !s.allow(id, action, nsTarget(ns)) {
		return nil, s.deny(id, action, nsTarget(ns))
	}
	return ns, nil
}

// CreateObject implements imaged.MetadefService.
func (s *Service) CreateObject(ctx context.Context, ns string, o *imaged.MetadefObject) (*imaged.MetadefObject, error) {
	if _, err := s.objChild(ctx, ns, imaged.ActionAddMetadefObject); err != nil {
		return nil, err
	}
	oc := *o
	now := s.clock.Now()
	oc.CreatedAt, oc.UpdatedAt = now, now
	it, err := oc.Item()
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateMetadefItems(ctx, ns, imaged.MetadefObjectKind, []*imaged.MetadefItem{it}, false); err != nil {
		return nil, err
	}
	return &oc, nil
}

// GetObject implements imaged.MetadefService.
func (s *Service) GetObject(ctx context.Context, ns, name string) (*imaged.MetadefObject, error) {
	if _, err := s.objChild(ctx, ns, imaged.ActionGetMetadefObject); err != nil {
		return nil, err
	}
	it, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefObjectKind, name)
	if err != nil {
		return nil, err
	}
	return imaged.MetadefObjectFromItem(it)
}

// UpdateObject implements imaged.MetadefService.
func (s *Service) UpdateObject(ctx context.Context, ns, name string, o *imaged.MetadefObject) (*imaged.MetadefObject, error) {
	if _, err := s.objChild(ctx, ns, imaged.ActionModifyMetadefObject); err != nil {
		return nil, err
	}
	old, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefObjectKind, name)
	if err != nil {
		return nil, err
	}
	oc := *o
	oc.CreatedAt, oc.UpdatedAt = old.CreatedAt, s.clock.Now()
	it, err := oc.Item()
	if err != nil {
		return nil, err
	}
	if err := s.store.UpdateMetadefItem(ctx, ns, imaged.MetadefObjectKind, name, it); err != nil {
		return nil, err
	}
	return &oc, nil
}

// DeleteObject implements imaged.MetadefService.
func (s *Service) DeleteObject(ctx context.Context, ns, name string) error {
	n, err := s.objChild(ctx, ns, imaged.ActionDeleteMetadefObject)
	if err != nil {
		return err
	}
	if _, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefObjectKind, name); err != nil {
		return err
	}
	if n.Protected {
		return imaged.Errorf(imaged.EFORBIDDEN, "Metadata definition object %s is protected and cannot be deleted.", name)
	}
	return s.store.DeleteMetadefItem(ctx, ns, imaged.MetadefObjectKind, name)
}

// DeleteObjects implements imaged.MetadefService.
func (s *Service) DeleteObjects(ctx context.Context, ns string) error {
	return s.deleteAll(ctx, ns, imaged.MetadefObjectKind)
}

// ListProperties implements imaged.MetadefService.
func (s *Service) ListProperties(ctx context.Context, ns string) ([]*imaged.MetadefProperty, error) {
	if _, err := s.child(ctx, ns, imaged.ActionGetMetadefProperties); err != nil {
		return nil, err
	}
	return s.listProperties(ctx, ns)
}

// CreateProperty implements imaged.MetadefService.
func (s *Service) CreateProperty(ctx context.Context, ns string, p *imaged.MetadefProperty) (*imaged.MetadefProperty, error) {
	if _, err := s.child(ctx, ns, imaged.ActionAddMetadefProperty); err != nil {
		return nil, err
	}
	it := p.Item()
	now := s.clock.Now()
	it.CreatedAt, it.UpdatedAt = now, now
	if err := s.store.CreateMetadefItems(ctx, ns, imaged.MetadefPropertyKind, []*imaged.MetadefItem{it}, false); err != nil {
		return nil, err
	}
	return p, nil
}

// GetProperty implements imaged.MetadefService. With a resource type, a
// name carrying that association's prefix names the unprefixed property
// (Glance's show with ?resource_type=).
func (s *Service) GetProperty(ctx context.Context, ns, name, resourceType string) (*imaged.MetadefProperty, error) {
	n, err := s.child(ctx, ns, imaged.ActionGetMetadefProperty)
	if err != nil {
		return nil, err
	}
	lookup := name
	if resourceType != "" {
		prefix := prefixFor(n, resourceType)
		if prefix == "" && !hasAssociation(n, resourceType) {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "The metadata definition resource-type association of resource-type=%s to namespace=%s, was not found.", resourceType, ns)
		}
		if prefix != "" {
			if !strings.HasPrefix(name, prefix) {
				return nil, imaged.Errorf(imaged.ENOTFOUND, "Property %s does not start with the expected resource type association prefix of '%s'.", name, prefix)
			}
			lookup = strings.TrimPrefix(name, prefix)
		}
	}
	it, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefPropertyKind, lookup)
	if err != nil {
		return nil, err
	}
	return imaged.MetadefPropertyFromItem(it), nil
}

func hasAssociation(ns *imaged.MetadefNamespace, rt string) bool {
	for _, a := range ns.ResourceTypeAssociations {
		if a.Name == rt {
			return true
		}
	}
	return false
}

// UpdateProperty implements imaged.MetadefService.
func (s *Service) UpdateProperty(ctx context.Context, ns, name string, p *imaged.MetadefProperty) (*imaged.MetadefProperty, error) {
	if _, err := s.child(ctx, ns, imaged.ActionModifyMetadefProperty); err != nil {
		return nil, err
	}
	it := p.Item()
	it.UpdatedAt = s.clock.Now()
	if err := s.store.UpdateMetadefItem(ctx, ns, imaged.MetadefPropertyKind, name, it); err != nil {
		return nil, err
	}
	return p, nil
}

// DeleteProperty implements imaged.MetadefService.
func (s *Service) DeleteProperty(ctx context.Context, ns, name string) error {
	n, err := s.child(ctx, ns, imaged.ActionRemoveMetadefProperty)
	if err != nil {
		return err
	}
	if _, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefPropertyKind, name); err != nil {
		return err
	}
	if n.Protected {
		return imaged.Errorf(imaged.EFORBIDDEN, "Metadata definition property %s is protected and cannot be deleted.", name)
	}
	return s.store.DeleteMetadefItem(ctx, ns, imaged.MetadefPropertyKind, name)
}

// DeleteProperties implements imaged.MetadefService.
func (s *Service) DeleteProperties(ctx context.Context, ns string) error {
	return s.deleteAll(ctx, ns, imaged.MetadefPropertyKind)
}

// ListTags implements imaged.MetadefService.
func (s *Service) ListTags(ctx context.Context, ns string) ([]*imaged.MetadefTag, error) {
	if _, err := s.child(ctx, ns, imaged.ActionGetMetadefTags); err != nil {
		return nil, err
	}
	return s.listTags(ctx, ns)
}

// CreateTag implements imaged.MetadefService.
func (s *Service) CreateTag(ctx context.Context, ns, name string) (*imaged.MetadefTag, error) {
	if _, err := s.child(ctx, ns, imaged.ActionAddMetadefTag); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	t := &imaged.MetadefTag{Name: name, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateMetadefItems(ctx, ns, imaged.MetadefTagKind, []*imaged.MetadefItem{t.Item()}, false); err != nil {
		return nil, err
	}
	return t, nil
}

// CreateTags implements imaged.MetadefService.
func (s *Service) CreateTags(ctx context.Context, ns string, names []string, appendTags bool) ([]*imaged.MetadefTag, error) {
	if _, err := s.child(ctx, ns, imaged.ActionAddMetadefTags); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	tags := make([]*imaged.MetadefTag, len(names))
	items := make([]*imaged.MetadefItem, len(names))
	for i, n := range names {
		tags[i] = &imaged.MetadefTag{Name: n, CreatedAt: now, UpdatedAt: now}
		items[i] = tags[i].Item()
	}
	if len(items) > 0 {
		if err := s.store.CreateMetadefItems(ctx, ns, imaged.MetadefTagKind, items, !appendTags); err != nil {
			return nil, err
		}
	}
	return tags, nil
}

// GetTag implements imaged.MetadefService.
func (s *Service) GetTag(ctx context.Context, ns, name string) (*imaged.MetadefTag, error) {
	if _, err := s.child(ctx, ns, imaged.ActionGetMetadefTag); err != nil {
		return nil, err
	}
	it, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefTagKind, name)
	if err != nil {
		return nil, err
	}
	return imaged.MetadefTagFromItem(it), nil
}

// UpdateTag implements imaged.MetadefService.
func (s *Service) UpdateTag(ctx context.Context, ns, name, newName string) (*imaged.MetadefTag, error) {
	if _, err := s.child(ctx, ns, imaged.ActionModifyMetadefTag); err != nil {
		return nil, err
	}
	old, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefTagKind, name)
	if err != nil {
		return nil, err
	}
	t := &imaged.MetadefTag{Name: newName, CreatedAt: old.CreatedAt, UpdatedAt: s.clock.Now()}
	if err := s.store.UpdateMetadefItem(ctx, ns, imaged.MetadefTagKind, name, t.Item()); err != nil {
		return nil, err
	}
	return t, nil
}

// DeleteTag implements imaged.MetadefService.
func (s *Service) DeleteTag(ctx context.Context, ns, name string) error {
	n, err := s.child(ctx, ns, imaged.ActionDeleteMetadefTag)
	if err != nil {
		return err
	}
	if _, err := s.store.GetMetadefItem(ctx, ns, imaged.MetadefTagKind, name); err != nil {
		return err
	}
	if n.Protected {
		return imaged.Errorf(imaged.EFORBIDDEN, "Metadata definition tag %s is protected and cannot be deleted.", name)
	}
	return s.store.DeleteMetadefItem(ctx, ns, imaged.MetadefTagKind, name)
}

// DeleteTags implements imaged.MetadefService.
func (s *Service) DeleteTags(ctx context.Context, ns string) error {
	return s.deleteAll(ctx, ns, imaged.MetadefTagKind, imaged.ActionDeleteMetadefTags)
}

// ListResourceTypes implements imaged.MetadefService.
func (s *Service) ListResourceTypes(ctx context.Context) ([]*imaged.MetadefResourceType, error) {
	id := imaged.IdentityFromContext(ctx)
	if !s.allow(id, imaged.ActionListMetadefResourceType, callerTarget(id)) {
		return nil, s.deny(id, imaged.ActionListMetadefResourceType, callerTarget(id))
	}
	return s.store.ListMetadefResourceTypes(ctx)
}

// ListAssociations implements imaged.MetadefService.
func (s *Service) ListAssociations(ctx context.Context, ns string) ([]*imaged.MetadefResourceTypeAssociation, error) {
	n, err := s.child(ctx, ns, imaged.ActionGetMetadefResourceType)
	if err != nil {
		return nil, err
	}
	return n.ResourceTypeAssociations, nil
}

// Associate implements imaged.MetadefService.
func (s *Service) Associate(ctx context.Context, ns string, a *imaged.MetadefResourceTypeAssociation) (*imaged.MetadefResourceTypeAssociation, error) {
	if _, err := s.child(ctx, ns, imaged.ActionAddMetadefRTAssociation); err != nil {
		return nil, err
	}
	ac := *a
	now := s.clock.Now()
	ac.CreatedAt, ac.UpdatedAt = now, now
	if err := s.store.AssociateMetadefResourceType(ctx, ns, &ac); err != nil {
		return nil, err
	}
	return &ac, nil
}

// Dissociate implements imaged.MetadefService.
func (s *Service) Dissociate(ctx context.Context, ns, rt string) error {
	n, err := s.child(ctx, ns, imaged.ActionDelMetadefRTAssociation)
	if err != nil {
		return err
	}
	if !hasAssociation(n, rt) {
		return imaged.Errorf(imaged.ENOTFOUND, "Failed to find resource type %s to delete", rt)
	}
	if n.Protected {
		return imaged.Errorf(imaged.EFORBIDDEN, "Metadata definition resource-type-association %s is protected and cannot be deleted.", rt)
	}
	return s.store.DissociateMetadefResourceType(ctx, ns, rt)
}
