package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	blobs3 "github.com/imaged/imaged/blob/s3"
	"github.com/imaged/imaged/blob/s3/s3test"
)

const testS3Secret = "S3-Secret-Never-Shown-4711"

// An s3:// value of --stores opens an S3 store; no server is needed to
// parse it, and the secret shows nowhere.
func TestParseS3StoreFlags(t *testing.T) {
	t.Parallel()
	want := blobs3.Config{Endpoint: "http://127.0.0.1:9000", Bucket: "images", Prefix: "imaged/", Region: "eu-1",
		AccessKey: "AK", SecretKey: testS3Secret}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    storeFlags
		wantErr string
	}{
		{name: "credentials in the URL", args: []string{"--stores", "local=/a, obj=s3://AK:" + testS3Secret + "@127.0.0.1:9000/images/imaged?region=eu-1&insecure=true"},
			want: storeFlags{Stores: []storeSpec{{Name: "local", Dir: "/a"}, {Name: "obj", S3: &want}}, Default: "local"}},
		{name: "credentials from the environment", args: []string{"--default-store", "obj"},
			env: map[string]string{"IMAGED_STORES": "obj=s3://127.0.0.1:9000/images/imaged/?region=eu-1&insecure=true",
				"IMAGED_S3_ACCESS_KEY": "AK", "IMAGED_S3_SECRET_KEY": testS3Secret},
			want: storeFlags{Stores: []storeSpec{{Name: "obj", S3: &want}}, Default: "obj"}},
		{name: "bad s3 value", args: []string{"--stores", "obj=s3://AK:" + testS3Secret + "@127.0.0.1:9000/Bad_Bucket"}, wantErr: `store "obj"`},
		{name: "bad escape", args: []string{"--stores", "obj=s3://AK:" + testS3Secret + "%zz@127.0.0.1:9000/images"}, wantErr: "not a valid URL"},
		{name: "no credentials", args: []string{"--stores", "obj=s3://127.0.0.1:9000/images"}, env: map[string]string{"IMAGED_S3_ACCESS_KEY": "AK"}, wantErr: "IMAGED_S3_SECRET_KEY"},
		{name: "no name", args: []string{"--stores", "s3://AK:" + testS3Secret + "@127.0.0.1:9000/images"}, wantErr: "want name=dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var usage bytes.Buffer
			c, err := parseServeFlags(tt.args, envOf(tt.env), &usage)
			if strings.Contains(fmt.Sprint(err), testS3Secret) || strings.Contains(usage.String(), testS3Secret) {
				t.Fatalf("the secret shows: %v %s", err, usage.String())
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := c.Stores
			if len(got.Stores) != len(tt.want.Stores) || got.Default != tt.want.Default {
				t.Fatalf("stores = %v, want %v", got, tt.want)
			}
			for i, s := range got.Stores {
				w := tt.want.Stores[i]
				if s.Name != w.Name || s.Dir != w.Dir || (s.S3 == nil) != (w.S3 == nil) || s.S3 != nil && *s.S3 != *w.S3 {
					t.Fatalf("store %d = %v (%v), want %v (%v)", i, s, s.S3, w, w.S3)
				}
			}
			// However the stores are printed or logged, no secret.
			var logged bytes.Buffer
			slog.New(slog.NewTextHandler(&logged, nil)).Info("stores", "stores", got.Stores, "first", got.Stores[len(got.Stores)-1])
			for _, s := range []string{fmt.Sprint(got), fmt.Sprintf("%+v %v", got.Stores, got.Stores[len(got.Stores)-1]), logged.String()} {
				if strings.Contains(s, testS3Secret) {
					t.Fatalf("printed stores show the secret: %s", s)
				}
			}
		})
	}
}

// -h prints no secret that IMAGED_STORES holds.
func TestStoreHelpHidesSecret(t *testing.T) {
	t.Parallel()
	var usage bytes.Buffer
	parseServeFlags([]string{"-h"}, envOf(map[string]string{"IMAGED_STORES": "obj=s3://AK:" + testS3Secret + "@127.0.0.1:9000/images"}), &usage)
	if !strings.Contains(usage.String(), "-stores") || strings.Contains(usage.String(), testS3Secret) {
		t.Fatalf("usage shows the secret, or no --stores: %s", usage.String())
	}
}

// A store whose server cannot be reached fails the start clearly, and the
// secret shows neither in the error nor in the log.
func TestServeS3StoreUnreachable(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--stores", "obj=s3://AK:" + testS3Secret + "@127.0.0.1:1/images?insecure=true"}, envOf(nil), io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "cannot open image store obj (s3://AK:xxxxx@127.0.0.1:1/images/") ||
		strings.Contains(stderr.String(), testS3Secret) {
		t.Fatalf("code %d, stderr %q", code, stderr.String())
	}
}

// imaged serve over a real S3 server: an image uploaded into the s3 store
// lands in the bucket and downloads whole; the secret is never logged.
func TestServeS3Store(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	u := fmt.Sprintf("s3://%s:%s@%s/%s/imaged?insecure=true", srv.AccessKey, srv.SecretKey, strings.TrimPrefix(srv.Endpoint, "http://"), bucket)
	url, stop, logs := startServe(t, "--data-dir", filepath.Join(t.TempDir(), "data"), "--stores", "obj="+u, "--log-level", "debug")

	resp, err := http.Post(url+"/v2/images", "application/json", strings.NewReader(`{"name":"s3","disk_format":"raw","container_format":"bare"}`))
	if err != nil {
		t.Fatal(err)
	}
	var img struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&img)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || img.ID == "" {
		t.Fatalf("create image: %d %+v", resp.StatusCode, img)
	}
	data := bytes.Repeat([]byte("imaged on s3 "), 100000)
	req, _ := http.NewRequest(http.MethodPut, url+"/v2/images/"+img.ID+"/file", bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	resp, err = http.Get(url + "/v2/images/" + img.ID + "/file")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("download: %d, %d bytes, %v", resp.StatusCode, len(got), err)
	}
	list, err := srv.Client().ListObjectsV2(t.Context(), &s3sdk.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("imaged/images/" + img.ID)})
	if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(len(data)) {
		t.Fatalf("bucket: %v, %+v", err, list)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d: %s", code, logs.String())
	}
	if strings.Contains(logs.String(), srv.SecretKey) {
		t.Fatalf("the secret appears in the log: %s", logs.String())
	}
}
