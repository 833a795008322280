package imaged

import (
	"context"
	"encoding/json"
	"time"
)

// Metadata definitions ("metadefs") are Glance's catalog of the properties
// other services understand (Nova's hw_*, Cinder's volume types...), so
// that dashboards can offer them: namespaces that group objects,
// properties and tags, and are associated with the resource types
// (OS::Glance::Image, OS::Nova::Flavor...) they apply to.

// MetadefNamespace is a namespace of metadata definitions. Its name is its
// identity (Glance addresses namespaces by name).
type MetadefNamespace struct {
	Namespace   string
	DisplayName string // "" = none
	Description string // "" = none
	Visibility  Visibility
	Protected   bool
	Owner       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// ResourceTypeAssociations are filled in by the store's Get and List,
	// in association order; creates and updates ignore them.
	ResourceTypeAssociations []*MetadefResourceTypeAssociation
}

// Clone returns a deep copy.
func (n *MetadefNamespace) Clone() *MetadefNamespace {
	c := *n
	c.ResourceTypeAssociations = make([]*MetadefResourceTypeAssociation, len(n.ResourceTypeAssociations))
	for i, a := range n.ResourceTypeAssociations {
		ac := *a
		c.ResourceTypeAssociations[i] = &ac
	}
	return &c
}

// MetadefKind names the three kinds of a namespace's definitions, which
// the store keeps alike: a name, a JSON document and timestamps.
type MetadefKind string

// Definition kinds.
const (
	MetadefObjectKind   MetadefKind = "object"
	MetadefPropertyKind MetadefKind = "property"
	MetadefTagKind      MetadefKind = "tag"
)

// MetadefItem is a definition as stored: an object, a property or a tag of
// a namespace, unique by (namespace, kind, name). Data is the definition's
// JSON document without its name (see MetadefObject.Data,
// MetadefProperty.Schema); tags have none (nil).
type MetadefItem struct {
	Kind      MetadefKind
	Name      string
	Data      json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// MetadefObject is a named group of property schemas (Glance's metadef
// object).
type MetadefObject struct {
	Name        string
	Description string   // "" = none
	Required    []string // names of required properties
	// Properties is a JSON object of property name to property schema,
	// kept as sent (key order included).
	Properties json.RawMessage
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// metadefObjectData is the stored document of an object.
type metadefObjectData struct {
	Description string          `json:"description,omitempty"`
	Required    []string        `json:"required,omitempty"`
	Properties  json.RawMessage `json:"properties,omitempty"`
}

// Item returns the object's stored form.
func (o *MetadefObject) Item() (*MetadefItem, error) {
	d := metadefObjectData{Description: o.Description, Required: o.Required, Properties: o.Properties}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, Errorf(EINVALID, "object %s is not JSON: %v", o.Name, err)
	}
	return &MetadefItem{Kind: MetadefObjectKind, Name: o.Name, Data: b, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}, nil
}

// MetadefObjectFromItem decodes a stored object.
func MetadefObjectFromItem(it *MetadefItem) (*MetadefObject, error) {
	var d metadefObjectData
	if len(it.Data) > 0 {
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return nil, Errorf(EINTERNAL, "stored object %s: %v", it.Name, err)
		}
	}
	return &MetadefObject{Name: it.Name, Description: d.Description, Required: d.Required,
		Properties: d.Properties, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}, nil
}

// MetadefProperty is a property definition: a name and a JSON schema
// (title, type, description, enum, default...), kept as a JSON object
// without the name, key order as sent.
type MetadefProperty struct {
	Name   string
	Schema json.RawMessage
}

// Item returns the property's stored form.
func (p *MetadefProperty) Item() *MetadefItem {
	return &MetadefItem{Kind: MetadefPropertyKind, Name: p.Name, Data: p.Schema}
}

// MetadefPropertyFromItem returns a stored property.
func MetadefPropertyFromItem(it *MetadefItem) *MetadefProperty {
	return &MetadefProperty{Name: it.Name, Schema: it.Data}
}

// MetadefTag is a tag definition.
type MetadefTag struct {
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Item returns the tag's stored form.
func (t *MetadefTag) Item() *MetadefItem {
	return &MetadefItem{Kind: MetadefTagKind, Name: t.Name, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// MetadefTagFromItem returns a stored tag.
func MetadefTagFromItem(it *MetadefItem) *MetadefTag {
	return &MetadefTag{Name: it.Name, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
}

// MetadefResourceType is a kind of resource namespaces apply to
// ("OS::Glance::Image"). Protected ones (those Glance ships) are never
// removed.
type MetadefResourceType struct {
	Name      string
	Protected bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// MetadefResourceTypeAssociation says a namespace applies to a resource
// type, with the prefix its properties take there ("hw_") and, for
// resource types with several property sets (Cinder's volume: image or
// volume metadata), which one (PropertiesTarget).
type MetadefResourceTypeAssociation struct {
	Name             string // the resource type
	Prefix           string // "" = none
	PropertiesTarget string // "" = none
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// MetadefNamespaceQuery selects namespaces for a listing, in the order of
// SortKey and SortDir with created_at, then insertion order, as
// tie-breakers (Glance's keyset pagination).
type MetadefNamespaceQuery struct {
	// Scope: "" = every namespace (admins); otherwise the public ones and
	// those owned by this project. ScopeNone restricts to public ones (a
	// caller without project).
	Scope     string
	ScopeNone bool
	// Visibility, when not "", keeps only that visibility.
	Visibility Visibility
	// ResourceTypes, when not empty, keeps namespaces associated with at
	// least one of them.
	ResourceTypes []string
	SortKey       string // "namespace", "created_at", "updated_at", "display_name", "visibility", "protected", "owner"
	SortDesc      bool
	// Marker: the page starts after this namespace (which must exist and
	// be in scope: ENOTFOUND otherwise).
	Marker string
	Limit  int // <= 0 = no limit
}

// MetadefStore keeps metadata definitions. Names are case-sensitive. A
// zero UpdatedAt is stored as "never updated" (definitions loaded from
// files, as glance-manage leaves them) and read back as zero.
// Errors: ENOTFOUND for a missing namespace, definition or association;
// ECONFLICT for a duplicate name.
type MetadefStore interface {
	CreateMetadefNamespace(ctx context.Context, ns *MetadefNamespace) error
	GetMetadefNamespace(ctx context.Context, namespace string) (*MetadefNamespace, error)
	ListMetadefNamespaces(ctx context.Context, q MetadefNamespaceQuery) ([]*MetadefNamespace, error)
	// UpdateMetadefNamespace replaces the namespace called namespace
	// with ns (ns.Namespace may rename it; CreatedAt is kept).
	UpdateMetadefNamespace(ctx context.Context, namespace string, ns *MetadefNamespace) error
	// DeleteMetadefNamespace deletes a namespace with its definitions and
	// associations.
	DeleteMetadefNamespace(ctx context.Context, namespace string) error

	// CreateMetadefItems adds definitions of one kind to a namespace in
	// one transaction; with replace, the kind's existing definitions are
	// deleted first. A duplicate name (within items or, without replace,
	// with an existing one) is ECONFLICT and adds nothing.
	CreateMetadefItems(ctx context.Context, namespace string, kind MetadefKind, items []*MetadefItem, replace bool) error
	GetMetadefItem(ctx context.Context, namespace string, kind MetadefKind, name string) (*MetadefItem, error)
	// ListMetadefItems returns a kind's definitions of a namespace:
	// objects and properties by name, tags newest first (ties: the
	// later-created first), as Glance lists them.
	ListMetadefItems(ctx context.Context, namespace string, kind MetadefKind) ([]*MetadefItem, error)
	// UpdateMetadefItem replaces the definition called name with it
	// (it.Name may rename it; CreatedAt is kept).
	UpdateMetadefItem(ctx context.Context, namespace string, kind MetadefKind, name string, it *MetadefItem) error
	DeleteMetadefItem(ctx context.Context, namespace string, kind MetadefKind, name string) error
	// DeleteMetadefItems deletes every definition of a kind.
	DeleteMetadefItems(ctx context.Context, namespace string, kind MetadefKind) error

	// ListMetadefResourceTypes returns every resource type in creation
	// order.
	ListMetadefResourceTypes(ctx context.Context) ([]*MetadefResourceType, error)
	// AssociateMetadefResourceType associates a namespace with a
	// resource type, creating the resource type (unprotected) if new.
	// An existing association is ECONFLICT.
	AssociateMetadefResourceType(ctx context.Context, namespace string, a *MetadefResourceTypeAssociation) error
	// DissociateMetadefResourceType removes an association.
	DissociateMetadefResourceType(ctx context.Context, namespace, resourceType string) error
}

// MetadefNamespaceInput is a namespace as a create or update request
// gives it, with its definitions (create only; a definitions file).
type MetadefNamespaceInput struct {
	Namespace                MetadefNamespace
	ResourceTypeAssociations []*MetadefResourceTypeAssociation
	Objects                  []*MetadefObject
	Properties               []*MetadefProperty
	Tags                     []*MetadefTag
}

// MetadefNamespaceDetail is a namespace with its definitions, as GET of
// one namespace shows it.
type MetadefNamespaceDetail struct {
	Namespace  *MetadefNamespace
	Objects    []*MetadefObject
	Properties []*MetadefProperty
	Tags       []*MetadefTag
}

// MetadefService is the metadata definitions catalog's use cases with
// Glance's rules (visibility, protection, policy). The caller comes from
// the context. Errors: EINVALID, EFORBIDDEN, ENOTFOUND, ECONFLICT.
type MetadefService interface {
	ListNamespaces(ctx context.Context, q MetadefNamespaceQuery) ([]*MetadefNamespace, error)
	// CreateNamespace creates a namespace with its associations and
	// definitions, and returns it as GetNamespace would.
	CreateNamespace(ctx context.Context, in *MetadefNamespaceInput) (*MetadefNamespaceDetail, error)
	// GetNamespace returns a namespace with its definitions; a
	// resourceType other than "" prefixes property names with that
	// association's prefix.
	GetNamespace(ctx context.Context, namespace, resourceType string) (*MetadefNamespaceDetail, error)
	UpdateNamespace(ctx context.Context, namespace string, ns *MetadefNamespace) (*MetadefNamespace, error)
	DeleteNamespace(ctx context.Context, namespace string) error

	ListObjects(ctx context.Context, namespace string) ([]*MetadefObject, error)
	CreateObject(ctx context.Context, namespace string, o *MetadefObject) (*MetadefObject, error)
	GetObject(ctx context.Context, namespace, name string) (*MetadefObject, error)
	UpdateObject(ctx context.Context, namespace, name string, o *MetadefObject) (*MetadefObject, error)
	DeleteObject(ctx context.Context, namespace, name string) error
	DeleteObjects(ctx context.Context, namespace string) error

	ListProperties(ctx context.Context, namespace string) ([]*MetadefProperty, error)
	CreateProperty(ctx context.Context, namespace string, p *MetadefProperty) (*MetadefProperty, error)
	// GetProperty accepts a name carrying the prefix of the resource
	// type given ("hw_cpu_cores" for OS::Nova::Flavor).
	GetProperty(ctx context.Context, namespace, name, resourceType string) (*MetadefProperty, error)
	UpdateProperty(ctx context.Context, namespace, name string, p *MetadefProperty) (*MetadefProperty, error)
	DeleteProperty(ctx context.Context, namespace, name string) error
	DeleteProperties(ctx context.Context, namespace string) error

	ListTags(ctx context.Context, namespace string) ([]*MetadefTag, error)
	// CreateTag creates one tag.
	CreateTag(ctx context.Context, namespace, name string) (*MetadefTag, error)
	// CreateTags creates several; with appendTags the existing ones stay
	// (X-Openstack-Append), otherwise they are replaced.
	CreateTags(ctx context.Context, namespace string, names []string, appendTags bool) ([]*MetadefTag, error)
	GetTag(ctx context.Context, namespace, name string) (*MetadefTag, error)
	UpdateTag(ctx context.Context, namespace, name, newName string) (*MetadefTag, error)
	DeleteTag(ctx context.Context, namespace, name string) error
	DeleteTags(ctx context.Context, namespace string) error

	ListResourceTypes(ctx context.Context) ([]*MetadefResourceType, error)
	ListAssociations(ctx context.Context, namespace string) ([]*MetadefResourceTypeAssociation, error)
	Associate(ctx context.Context, namespace string, a *MetadefResourceTypeAssociation) (*MetadefResourceTypeAssociation, error)
	Dissociate(ctx context.Context, namespace, resourceType string) error
}

// Metadef actions (Glance's policy names).
const (
	ActionGetMetadefNamespace     Action = "get_metadef_namespace"
	ActionGetMetadefNamespaces    Action = "get_metadef_namespaces"
	ActionModifyMetadefNamespace  Action = "modify_metadef_namespace"
	ActionAddMetadefNamespace     Action = "add_metadef_namespace"
	ActionDeleteMetadefNamespace  Action = "delete_metadef_namespace"
	ActionGetMetadefObject        Action = "get_metadef_object"
	ActionGetMetadefObjects       Action = "get_metadef_objects"
	ActionModifyMetadefObject     Action = "modify_metadef_object"
	ActionAddMetadefObject        Action = "add_metadef_object"
	ActionDeleteMetadefObject     Action = "delete_metadef_object"
	ActionListMetadefResourceType Action = "list_metadef_resource_types"
	ActionGetMetadefResourceType  Action = "get_metadef_resource_type"
	ActionAddMetadefRTAssociation Action = "add_metadef_resource_type_association"
	ActionDelMetadefRTAssociation Action = "remove_metadef_resource_type_association"
	ActionGetMetadefProperty      Action = "get_metadef_property"
	ActionGetMetadefProperties    Action = "get_metadef_properties"
	ActionModifyMetadefProperty   Action = "modify_metadef_property"
	ActionAddMetadefProperty      Action = "add_metadef_property"
	ActionRemoveMetadefProperty   Action = "remove_metadef_property"
	ActionGetMetadefTag           Action = "get_metadef_tag"
	ActionGetMetadefTags          Action = "get_metadef_tags"
	ActionModifyMetadefTag        Action = "modify_metadef_tag"
	ActionAddMetadefTag           Action = "add_metadef_tag"
	ActionAddMetadefTags          Action = "add_metadef_tags"
	ActionDeleteMetadefTag        Action = "delete_metadef_tag"
	ActionDeleteMetadefTags       Action = "delete_metadef_tags"
)
