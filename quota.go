package imaged

import "context"

// Names of the per-project quotas, as Glance's unified limits (registered in
// Keystone) name them.
const (
	QuotaImageSizeTotal      = "image_size_total"      // bytes of stored images
	QuotaImageStageTotal     = "image_stage_total"     // bytes of staged images
	QuotaImageCountTotal     = "image_count_total"     // images
	QuotaImageCountUploading = "image_count_uploading" // images being uploaded, staged or imported
)

// QuotaUsage is one quota of a project: its limit (-1 = unlimited) and what
// the project uses, in the quota's unit (bytes for the size quotas).
type QuotaUsage struct {
	Limit int64
	Usage int64
}

// UsageService is implemented by image services that keep per-project
// quotas: ProjectUsage returns every quota of the caller's project, keyed by
// the Quota* names.
type UsageService interface {
	ProjectUsage(ctx context.Context) (map[string]QuotaUsage, error)
}
