package sqlstore_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/imaged/imaged"
)

var genBase = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// genImages makes n images numbered from start with a catalog-like
// distribution: mostly public and active, ~1000 owners, unique-ish names
// with some NULLs, 50 tags, a few os_distro values. Deterministic in seed.
func genImages(seed uint64, start, n int) ([]*imaged.Image, []*imaged.Member) {
	r := rand.New(rand.NewPCG(seed, uint64(start)))
	imgs := make([]*imaged.Image, 0, n)
	var members []*imaged.Member
	weighted := func(vals []string, weights []int) string {
		x := r.IntN(100)
		for i, w := range weights {
			if x < w {
				return vals[i]
			}
			x -= w
		}
		return vals[len(vals)-1]
	}
	for i := start; i < start+n; i++ {
		created := genBase.Add(time.Duration(i)*time.Second + time.Duration(r.IntN(1000))*time.Microsecond)
		img := &imaged.Image{
			ID:              fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), i),
			Status:          imaged.ImageStatus(weighted([]string{"active", "queued", "deactivated", "killed"}, []int{85, 10, 3, 2})),
			Visibility:      imaged.Visibility(weighted([]string{"public", "private", "shared", "community"}, []int{60, 15, 15, 10})),
			Protected:       r.IntN(20) == 0,
			OSHidden:        r.IntN(20) == 0,
			Owner:           fmt.Sprintf("project-%04d", r.IntN(1000)),
			DiskFormat:      weighted([]string{"qcow2", "raw", "vmdk", "iso"}, []int{50, 30, 15, 5}),
			ContainerFormat: weighted([]string{"bare", "ovf", "docker"}, []int{80, 15, 5}),
			MinDisk:         int64(r.IntN(41)),
			MinRAM:          int64(r.IntN(17) * 512),
			CreatedAt:       created,
			UpdatedAt:       created.Add(time.Duration(r.IntN(86400)) * time.Second),
			Tags:            []string{fmt.Sprintf("tag-%02d", r.IntN(50))},
			Properties:      map[string]string{"os_distro": fmt.Sprintf("distro-%d", r.IntN(10)), "build": fmt.Sprint(i % 5000)},
		}
		if r.IntN(20) != 0 {
			img.Name = ptr(fmt.Sprintf("image-%07d", r.IntN(n+start)))
		}
		if r.IntN(20) != 0 {
			img.Size = ptr(int64(r.IntN(1 << 30)))
		}
		if r.IntN(3) != 0 {
			img.VirtualSize = ptr(int64(r.IntN(1 << 32)))
		}
		if img.Visibility == imaged.VisibilityShared {
			members = append(members, &imaged.Member{ImageID: img.ID, MemberID: fmt.Sprintf("project-%04d", r.IntN(1000)),
				Status: imaged.MemberStatus(weighted([]string{"accepted", "pending", "rejected"}, []int{70, 20, 10})), CreatedAt: created, UpdatedAt: created})
		}
		imgs = append(imgs, img)
	}
	return imgs, members
}
