package loadtest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestDiskProbe(t *testing.T) {
	dir := t.TempDir()
	p, err := StartDiskProbe(dir, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.samples)
		p.mu.Unlock()
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d probe writes in 10 s", n)
		}
		time.Sleep(time.Millisecond)
	}
	fi, err := os.Stat(filepath.Join(dir, "disk-probe"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != probeBlocks*4096 {
		t.Errorf("probe file is %d bytes, want %d (it must not grow)", fi.Size(), probeBlocks*4096)
	}
	samples := p.Stop()
	if len(samples) < 5 {
		t.Fatalf("%d samples", len(samples))
	}
	for i, s := range samples {
		if s.Took <= 0 || (i > 0 && s.At < samples[i-1].At) {
			t.Fatalf("sample %d: %+v after %+v", i, s, samples[max(i-1, 0)])
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "disk-probe")); !os.IsNotExist(err) {
		t.Errorf("probe file left behind: %v", err)
	}
}

func TestSummarizeAndMaxIn(t *testing.T) {
	ms := time.Millisecond
	samples := []ProbeSample{{0, 1 * ms}, {10 * ms, 30 * ms}, {20 * ms, 2 * ms}, {30 * ms, 25 * ms}, {40 * ms, 3 * ms}}
	s := Summarize(samples, 20*ms)
	if s.N != 5 || s.NSlow != 2 || s.Max != 30*ms || s.P50 != 3*ms {
		t.Errorf("summary %+v", s)
	}
	if got := MaxIn(samples, 20*ms, 20*ms); got != 25*ms {
		t.Errorf("MaxIn [20, 40) ms = %v, want 25ms", got)
	}
	if got := MaxIn(samples, 40*ms, 20*ms); got != 3*ms {
		t.Errorf("MaxIn [40, 60) ms = %v, want 3ms", got)
	}
	if got := MaxIn(samples, 50*ms, 20*ms); got != 0 {
		t.Errorf("MaxIn past the end = %v, want 0", got)
	}
}

func TestCPUTimes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/stat (Linux)")
	}
	total, steal, err := CPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if total <= 0 || steal < 0 || steal > total {
		t.Fatalf("total %d, steal %d", total, steal)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		total2, steal2, err := CPUTimes()
		if err != nil {
			t.Fatal(err)
		}
		if steal2 < steal {
			t.Fatalf("steal went back: %d, then %d", steal, steal2)
		}
		if total2 > total {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not advance in 10 s: %d", total2)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
