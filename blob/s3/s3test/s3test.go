// Package s3test runs a real S3-compatible server for tests: versitygw
// (scripts/deps/versitygw.sh installs it) serving a temporary directory
// on a free loopback port. Tests skip when versitygw is missing, except
// under CI=true, where they fail.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	blobs3 "github.com/imaged/imaged/blob/s3"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint             string
	AccessKey, SecretKey string
	// Dir is the directory it serves; each bucket is a directory in it.
	Dir string

	client  *s3sdk.Client
	buckets atomic.Int64
}

// Binary returns the path of versitygw: in PATH or in $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw is not installed (run scripts/install-test-deps.sh)")
}

// Start starts a versitygw for the test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s := &Server{AccessKey: "imagedtestaccess", SecretKey: "imaged-test-secret-" + fmt.Sprint(time.Now().UnixNano()), Dir: t.TempDir()}
	var lastErr error
	for range 3 { // a free port may be taken before versitygw binds it
		if lastErr = s.start(t, bin); lastErr == nil {
			return s
		}
	}
	t.Fatalf("starting versitygw: %v", lastErr)
	return nil
}

func (s *Server) start(t testing.TB, bin string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	// Always a loopback address: versitygw's default binds every
	// interface.
	cmd := exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "posix", s.Dir)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	s.Endpoint = "http://" + addr
	s.client = s3sdk.New(s3sdk.Options{Region: blobs3.DefaultRegion, BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			stop()
			return fmt.Errorf("versitygw exited: %v: %s", err, out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.client.ListBuckets(ctx, &s3sdk.ListBucketsInput{})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("versitygw on %s not ready: %v: %s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(stop)
	return nil
}

// Bucket creates a new empty bucket and returns its name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("bucket-%d", s.buckets.Add(1))
	if _, err := s.client.CreateBucket(t.Context(), &s3sdk.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// Config returns a store configuration for a new empty bucket, with prefix
// (e.g. "" or "imaged/").
func (s *Server) Config(t testing.TB, prefix string) blobs3.Config {
	t.Helper()
	return blobs3.Config{Endpoint: s.Endpoint, Bucket: s.Bucket(t), Prefix: prefix, Region: blobs3.DefaultRegion,
		AccessKey: s.AccessKey, SecretKey: s.SecretKey}
}

// Client returns an S3 client with the server's root credentials, to look
// at a bucket behind a store's back.
func (s *Server) Client() *s3sdk.Client { return s.client }

// lockedBuffer collects the server's output from its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
