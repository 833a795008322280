// Command createload creates images through the OpenStack Image API v2
// (POST /v2/images) as fast as one client can, over a fixed number of
// keep-alive connections (one by default), and prints JSON statistics.
//
// bench/bench.sh runs it against imaged and against the Glance peer with the
// same arguments, so that both servers see exactly the same request stream.
// Stdlib only, so that it builds anywhere the module builds.
//
//	createload -url http://127.0.0.1:9292 -token T -count 1000 -ids ids.txt
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// config is what one run needs.
type config struct {
	URL     string
	Token   string
	Count   int
	Conns   int
	Prefix  string
	Timeout time.Duration
}

// result is printed as JSON; field names are stable because bench.sh reads them.
type result struct {
	Created      int      `json:"created"`
	Errors       int      `json:"errors"`
	FirstErrors  []string `json:"first_errors,omitempty"`
	Seconds      float64  `json:"seconds"`
	CreatesPerS  float64  `json:"creates_per_s"`
	P50ms        float64  `json:"p50_ms"`
	P99ms        float64  `json:"p99_ms"`
	Connections  int64    `json:"connections"` // TCP connections opened; equals Conns when keep-alive held
	ids          []string
	latencies    []time.Duration
	firstErrsMax int
}

// body returns the create request for image number i. The mix of formats,
// visibilities, tags and extra properties exercises the same code paths as a
// real catalog; names repeat every 50 images so that a name filter matches
// a small, known set (bench-07 matches count/50 images).
func body(prefix string, i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"name":             fmt.Sprintf("%s-%02d", prefix, i%50),
		"disk_format":      [...]string{"raw", "qcow2", "iso"}[i%3],
		"container_format": "bare",
		"visibility":       [...]string{"public", "private", "shared", "community"}[i%4],
		"tags":             []string{"bench", "group-" + strconv.Itoa(i%10)},
		"min_ram":          i % 7,
		"os_distro":        [...]string{"ubuntu", "debian", "cirros"}[i%3],
		"hw_disk_bus":      "virtio",
		"bench_index":      strconv.Itoa(i),
	})
	return b
}

// run creates cfg.Count images and measures each request.
func run(ctx context.Context, cfg config) (*result, error) {
	if cfg.Count < 0 || cfg.Conns < 1 {
		return nil, errors.New("count must be >= 0 and conns >= 1")
	}
	var opened atomic.Int64
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		// Counting dials (not GotConn) also catches connections that were
		// dialed for one request and then handed to another.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			opened.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		MaxConnsPerHost:     cfg.Conns,
		MaxIdleConnsPerHost: cfg.Conns,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	res := &result{ids: make([]string, cfg.Count), latencies: make([]time.Duration, 0, cfg.Count), firstErrsMax: 3}
	var mu sync.Mutex
	var next atomic.Int64
	url := strings.TrimRight(cfg.URL, "/") + "/v2/images"
	worker := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= cfg.Count || ctx.Err() != nil {
				return
			}
			id, d, err := createOne(ctx, client, url, cfg.Token, body(cfg.Prefix, i))
			mu.Lock()
			res.latencies = append(res.latencies, d)
			if err != nil {
				res.Errors++
				if len(res.FirstErrors) < res.firstErrsMax {
					res.FirstErrors = append(res.FirstErrors, err.Error())
				}
			} else {
				res.ids[i] = id
				res.Created++
			}
			mu.Unlock()
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Conns {
		wg.Go(worker)
	}
	wg.Wait()
	el := time.Since(start)
	res.Seconds = round(el.Seconds(), 3)
	if el > 0 {
		res.CreatesPerS = round(float64(res.Created)/el.Seconds(), 1)
	}
	res.P50ms = round(percentile(res.latencies, 50).Seconds()*1e3, 2)
	res.P99ms = round(percentile(res.latencies, 99).Seconds()*1e3, 2)
	res.Connections = opened.Load()
	return res, ctx.Err()
}

// createOne sends one POST and returns the new image's id. The response body
// is always read to its end so that the connection goes back to the pool.
func createOne(ctx context.Context, c *http.Client, url, token string, b []byte) (string, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	t := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return "", time.Since(t), err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t)
	if err != nil {
		return "", d, err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", d, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
	}
	var img struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &img); err != nil || img.ID == "" {
		return "", d, fmt.Errorf("201 without an image id: %.200s", data)
	}
	return img.ID, d, nil
}

// percentile uses the nearest-rank method.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p/100*float64(len(s))+0.999999) - 1
	k = max(0, min(len(s)-1, k))
	return s[k]
}

func round(x float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return f
}

func main() {
	var cfg config
	var idsFile string
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:9292", "base URL of the Image API (without /v2)")
	flag.StringVar(&cfg.Token, "token", "", "X-Auth-Token header value (empty: none)")
	flag.IntVar(&cfg.Count, "count", 1000, "images to create")
	flag.IntVar(&cfg.Conns, "conns", 1, "keep-alive connections (one goroutine each)")
	flag.StringVar(&cfg.Prefix, "prefix", "bench", "image name prefix; names are PREFIX-00 .. PREFIX-49")
	flag.DurationVar(&cfg.Timeout, "timeout", 60*time.Second, "timeout of one request")
	flag.StringVar(&idsFile, "ids", "", "write the created ids here, one a line, in creation order")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "createload:", err)
		os.Exit(1)
	}
	if idsFile != "" {
		var sb strings.Builder
		for _, id := range res.ids {
			if id != "" {
				sb.WriteString(id + "\n")
			}
		}
		if err := os.WriteFile(idsFile, []byte(sb.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "createload:", err)
			os.Exit(1)
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
