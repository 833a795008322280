package catalog

import (
	"context"
	"io"

	"github.com/imaged/imaged"
)

// UploadImage is not built yet (the image-bytes milestone).
func (s *Service) UploadImage(ctx context.Context, id string, body io.Reader, size int64) (*imaged.Image, error) {
	return nil, imaged.Errorf(imaged.ENOTIMPLEMENTED, "Image data is not available yet.")
}

// DownloadImage is not built yet (the image-bytes milestone).
func (s *Service) DownloadImage(ctx context.Context, id string) (*imaged.ImageData, error) {
	return nil, imaged.Errorf(imaged.ENOTIMPLEMENTED, "Image data is not available yet.")
}
