package catalog

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// textGuard wraps an ImageStore so that no backend ever sees text it cannot
// store: PostgreSQL refuses NUL characters and invalid UTF-8 (an error that
// would surface as a 500), SQLite stores them. Guarding here keeps every
// backend's answers the same: such text is refused with 400 when written,
// matches nothing when used as a filter and names no image or member when
// used as an id. It is the store-wrapping pattern of distribution's
// storage-driver middleware: the backends stay unchanged.
type textGuard struct {
	imaged.ImageStore
}

// goodText reports whether s can be stored by every backend.
func goodText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

var errBadText = imaged.Errorf(imaged.EINVALID, "Invalid text: values must be valid UTF-8 and may not contain NUL characters.")

// imageText reports whether every client-supplied string of img is good.
func imageText(img *imaged.Image) bool {
	if img.Name != nil && !goodText(*img.Name) {
		return false
	}
	for _, s := range []string{img.ID, img.Owner, img.DiskFormat, img.ContainerFormat} {
		if !goodText(s) {
			return false
		}
	}
	for _, t := range img.Tags {
		if !goodText(t) {
			return false
		}
	}
	for k, v := range img.Properties {
		if !goodText(k) || !goodText(v) {
			return false
		}
	}
	return true
}

func noSuchImage(id string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "No image found with ID %s", strings.ToValidUTF8(strings.ReplaceAll(id, "\x00", ""), ""))
}

func (g textGuard) CreateImage(ctx context.Context, img *imaged.Image) error {
	if !imageText(img) {
		return errBadText
	}
	return g.ImageStore.CreateImage(ctx, img)
}

func (g textGuard) GetImage(ctx context.Context, id string) (*imaged.Image, error) {
	if !goodText(id) {
		return nil, noSuchImage(id)
	}
	return g.ImageStore.GetImage(ctx, id)
}

func (g textGuard) UpdateImage(ctx context.Context, id string, fn func(*imaged.Image) error) (*imaged.Image, error) {
	if !goodText(id) {
		return nil, noSuchImage(id)
	}
	return g.ImageStore.UpdateImage(ctx, id, func(img *imaged.Image) error {
		if err := fn(img); err != nil {
			return err
		}
		if !imageText(img) {
			return errBadText
		}
		return nil
	})
}

func (g textGuard) DeleteImage(ctx context.Context, id string, fn func(*imaged.Image) error) (*imaged.Image, error) {
	if !goodText(id) {
		return nil, noSuchImage(id)
	}
	return g.ImageStore.DeleteImage(ctx, id, fn)
}

// ListImages answers an empty page for a filter no stored text can match.
func (g textGuard) ListImages(ctx context.Context, q imaged.ImageQuery) ([]*imaged.Image, error) {
	lists := [][]string{q.IDs, q.Names, q.Statuses, q.Owners, q.ContainerFormat, q.DiskFormat, q.Tags,
		{q.Scope.ProjectID, q.Visibility, q.MemberStatus, q.Checksum, q.OSHashValue, q.OSHashAlgo}}
	for _, l := range lists {
		for _, s := range l {
			if !goodText(s) {
				return nil, nil
			}
		}
	}
	for k, v := range q.Properties {
		if !goodText(k) || !goodText(v) {
			return nil, nil
		}
	}
	return g.ImageStore.ListImages(ctx, q)
}

func (g textGuard) CreateMember(ctx context.Context, m *imaged.Member) error {
	if !goodText(m.ImageID) || !goodText(m.MemberID) {
		return errBadText
	}
	return g.ImageStore.CreateMember(ctx, m)
}

func (g textGuard) GetMember(ctx context.Context, imageID, memberID string) (*imaged.Member, error) {
	if !goodText(imageID) || !goodText(memberID) {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "Member not found.")
	}
	return g.ImageStore.GetMember(ctx, imageID, memberID)
}

func (g textGuard) ListMembers(ctx context.Context, imageID string) ([]*imaged.Member, error) {
	if !goodText(imageID) {
		return nil, nil
	}
	return g.ImageStore.ListMembers(ctx, imageID)
}

func (g textGuard) UpdateMember(ctx context.Context, m *imaged.Member) error {
	if !goodText(m.ImageID) || !goodText(m.MemberID) {
		return imaged.Errorf(imaged.ENOTFOUND, "Member not found.")
	}
	return g.ImageStore.UpdateMember(ctx, m)
}

func (g textGuard) DeleteMember(ctx context.Context, imageID, memberID string) error {
	if !goodText(imageID) || !goodText(memberID) {
		return imaged.Errorf(imaged.ENOTFOUND, "Member not found.")
	}
	return g.ImageStore.DeleteMember(ctx, imageID, memberID)
}

func (g textGuard) CountMembers(ctx context.Context, imageID string) (int, error) {
	if !goodText(imageID) {
		return 0, nil
	}
	return g.ImageStore.CountMembers(ctx, imageID)
}
