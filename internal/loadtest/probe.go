package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DiskProbe measures a disk's write latency beside a run. Every interval
// it writes one 4 KiB block of a 1 MiB file (the blocks in turn, so the
// file never grows) and waits until the block is durable (datasync), as a
// SQLite commit waits for its WAL. Every commit of the server in that
// moment waits on the same disk: a probe write that took 100 ms says the
// disk, not the server, held the commits up.
type DiskProbe struct {
	f     *os.File
	stop  chan struct{}
	done  chan struct{}
	start time.Time

	mu      sync.Mutex
	samples []ProbeSample
}

// ProbeSample is one probe write: when it began (since the probe
// started) and how long it took to be durable.
type ProbeSample struct {
	At, Took time.Duration
}

const probeBlocks = 256

// StartDiskProbe starts probing the disk that holds dir, once every
// interval.
func StartDiskProbe(dir string, interval time.Duration) (*DiskProbe, error) {
	f, err := os.OpenFile(filepath.Join(dir, "disk-probe"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// Allocate the blocks first: the probe then measures writes over
	// existing blocks, as SQLite's WAL makes once it has started over.
	if _, err := f.Write(make([]byte, probeBlocks*4096)); err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &DiskProbe{f: f, stop: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	go p.run(interval)
	return p, nil
}

func (p *DiskProbe) run(interval time.Duration) {
	defer close(p.done)
	block := bytes.Repeat([]byte{0x5a}, 4096)
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		at := time.Now()
		if _, err := p.f.WriteAt(block, int64(i%probeBlocks)*4096); err != nil {
			return
		}
		if err := datasync(p.f); err != nil {
			return
		}
		p.mu.Lock()
		p.samples = append(p.samples, ProbeSample{At: at.Sub(p.start), Took: time.Since(at)})
		p.mu.Unlock()
	}
}

// Started is when the probe began.
func (p *DiskProbe) Started() time.Time { return p.start }

// Stop ends the probe, removes its file and returns what it measured.
func (p *DiskProbe) Stop() []ProbeSample {
	close(p.stop)
	<-p.done
	name := p.f.Name()
	p.f.Close()
	os.Remove(name)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.samples
}

// ProbeSummary is the latency of a probe's writes, and how many of them
// took at least Slow.
type ProbeSummary struct {
	N             int
	P50, P99, Max time.Duration
	Slow          time.Duration
	NSlow         int
}

// Summarize sums samples up, counting those that took at least slow.
func Summarize(samples []ProbeSample, slow time.Duration) ProbeSummary {
	lat := make([]time.Duration, len(samples))
	s := ProbeSummary{N: len(samples), Slow: slow}
	for i, x := range samples {
		lat[i] = x.Took
		if x.Took >= slow {
			s.NSlow++
		}
	}
	s.P50, s.P99, s.Max = percentiles(lat)
	return s
}

func (s ProbeSummary) String() string {
	return fmt.Sprintf("disk probe (4 KiB write + datasync): %d writes, p50 %.2fms p99 %.2fms max %.2fms, %d took %v or more",
		s.N, ms(s.P50), ms(s.P99), ms(s.Max), s.NSlow, s.Slow)
}

// MaxIn is the longest of the probe writes that began in [from, from+d).
func MaxIn(samples []ProbeSample, from, d time.Duration) time.Duration {
	var m time.Duration
	for _, x := range samples {
		if x.At >= from && x.At < from+d {
			m = max(m, x.Took)
		}
	}
	return m
}

// CPUTimes returns the whole machine's CPU time so far from /proc/stat
// (Linux), in clock ticks: all of it, and the part the hypervisor gave
// to other guests (steal), which a VM's tail latency often follows.
func CPUTimes() (total, steal int64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 9 || string(fields[0]) != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice]
		for i, fld := range fields[1:] {
			n, err := strconv.ParseInt(string(fld), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: %w", err)
			}
			if i >= 8 { // guest time is already in user and nice
				break
			}
			total += n
			if i == 7 {
				steal = n
			}
		}
		return total, steal, nil
	}
	return 0, 0, fmt.Errorf("/proc/stat: no cpu line")
}
