package containers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/registry/registrytest"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// BenchmarkRescan pushes 2,000 tags across 100 repositories to a real
// registry and rescans them; it reports tags/s and registry requests per
// tag. The first iteration creates the rows, later ones refresh them.
//
//	go test -run '^$' -bench Rescan -benchtime 3x ./containers/
func BenchmarkRescan(b *testing.B) {
	const repos, tagsPerRepo = 100, 20
	reg := registrytest.Start(b, registrytest.Options{Filesystem: os.Getenv("IMAGED_BENCH_INMEMORY") == ""})
	reg.Pusher().PushMany(b, repos, tagsPerRepo)
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	counter := &registry.CountingTransport{Next: http.DefaultTransport.(*http.Transport).Clone()}
	tasks := bgtask.New(bgtask.Config{Store: st})
	defer tasks.Close(ctx)
	svc, err := containers.New(containers.Config{Store: st, Tasks: tasks, Policy: policy.Secure(), ScanConcurrency: benchConcurrency(),
		Registry: registry.New(registry.Options{Transport: counter}),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	admin := as(adminID)
	if _, err := svc.CreateRegistry(admin, &imaged.Registry{Name: "bench", URL: reg.URL, Projects: []string{"many"}}); err != nil {
		b.Fatal(err)
	}
	var tags int64
	var elapsed time.Duration
	counter.Reset()
	cpu0 := selfCPU() + procCPU(reg.Dir)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		tk, err := svc.RescanRegistry(admin, "bench", "")
		if err != nil {
			b.Fatal(err)
		}
		ch, err := svc.WatchTask(admin, tk.ID)
		if err != nil {
			b.Fatal(err)
		}
		var end *imaged.Task
		for s := range ch {
			end = s
		}
		elapsed += time.Since(start)
		if end.Status != imaged.TaskSuccess || len(end.Errors) != 0 || end.Progress.Done != repos*tagsPerRepo {
			b.Fatalf("rescan: %s %q %d errors %+v", end.Status, end.Message, len(end.Errors), end.Progress)
		}
		tags += end.Progress.Done
		b.Logf("rescan of %d tags: %v (registry %vms, commit %vms)", end.Progress.Done, time.Since(start).Round(time.Millisecond), end.Result["scan_ms"], end.Result["commit_ms"])
	}
	b.StopTimer()
	// On a shared machine wall time says little; the CPU both processes
	// (imaged and the registry) spent per tag does not depend on load.
	cpu := selfCPU() + procCPU(reg.Dir) - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(tags), "cpu-ms/tag")
	b.ReportMetric(float64(tags)/elapsed.Seconds(), "tags/s")
	b.ReportMetric(float64(counter.Requests())/float64(tags), "requests/tag")
}

// benchConcurrency is IMAGED_SCAN_CONCURRENCY or the default.
func benchConcurrency() int {
	n, _ := strconv.Atoi(os.Getenv("IMAGED_SCAN_CONCURRENCY"))
	return n
}

// selfCPU is the user and system CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time of the processes whose command line mentions
// dir (the registry started by registrytest), from /proc (Linux; 0
// elsewhere). Clock ticks are taken as 100 Hz, Linux's USER_HZ.
func procCPU(dir string) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmd), dir) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime 14, stime 15.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}
