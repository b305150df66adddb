// Package loadtest drives message workloads through a messaging system and
// measures them: the same workload runs through hushd (over its WebSocket
// API) and, in the bench module, through NATS JetStream, so that their
// figures can be compared within one run on one machine.
//
// A workload is a number of sender/receiver pairs. Each sender keeps up to
// Window messages unacknowledged by the system (acknowledged = the system
// says it is durable) and each receiver acknowledges every message it gets.
// The content's first 16 bytes carry the send time and a sequence number,
// so that the receiver can compute the delivery latency.
package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// System is a messaging system under test.
type System interface {
	// Name is used in reports.
	Name() string
	// Setup prepares n pairs (accounts, streams, consumers).
	Setup(ctx context.Context, n int) error
	// Open connects pair i: onSent is called once per message the system
	// acknowledged to the sender, onRecv once per message delivered to the
	// receiver (which the system has then been told to delete). It returns
	// the function that sends one message, asynchronously.
	Open(ctx context.Context, i int, onSent func(), onRecv func(content []byte)) (send func(content []byte) error, err error)
	// Close disconnects everything.
	Close() error
}

// Workload describes a run.
type Workload struct {
	Pairs    int
	Messages int           // total, for throughput runs (Rate == 0)
	Size     int           // content bytes, at least 16
	Window   int           // unacknowledged sends per sender
	Rate     float64       // total messages per second; 0: as fast as possible
	Duration time.Duration // for Rate runs
	// Timeline, if above zero, makes Run report delivery latency per
	// period of this length (Result.Timeline), by send time.
	Timeline time.Duration
	// Warmup, if above zero, makes Run report the delivery latency of the
	// messages sent after the first Warmup of the run apart as well
	// (Result.Steady): the first messages of each pair meet the server's
	// caches cold, all at once.
	Warmup time.Duration
	// Started, if set, is called once the pairs are set up and connected,
	// just before the first message is sent (to take measurements that
	// leave the setup out, such as the server's CPU time).
	Started func()
}

// Result is what a run measured.
type Result struct {
	System    string
	Workload  Workload
	Sent      int64 // acknowledged by the system
	Received  int64
	Elapsed   time.Duration
	PerSecond float64 // messages received per second
	// Delivery latency: send call to delivery at the receiver.
	P50, P99, Max time.Duration
	// Send latency: send call to the system's acknowledgement.
	SendP50, SendP99 time.Duration
	Behind           int64 // for Rate runs: sends skipped because the window was full
	// Timeline is delivery latency per Workload.Timeline of send time,
	// from the first send on (with Workload.Timeline only).
	Timeline []Period
	// Steady is the delivery latency of the messages sent after
	// Workload.Warmup (with Workload.Warmup only).
	Steady Period
}

// Period is the delivery latency of the messages sent in one period of a
// run's timeline.
type Period struct {
	Start         time.Duration // since the first send
	Messages      int
	P50, P99, Max time.Duration
}

func (r Result) String() string {
	s := fmt.Sprintf("%-28s pairs=%d size=%d window=%d", r.System, r.Workload.Pairs, r.Workload.Size, r.Workload.Window)
	if r.Workload.Rate > 0 {
		s += fmt.Sprintf(" rate=%.0f/s", r.Workload.Rate)
	}
	s += fmt.Sprintf(": %d msgs in %.2fs = %.0f msg/s; delivery p50 %.2fms p99 %.2fms max %.2fms; durable-ack p50 %.2fms p99 %.2fms",
		r.Received, r.Elapsed.Seconds(), r.PerSecond, ms(r.P50), ms(r.P99), ms(r.Max), ms(r.SendP50), ms(r.SendP99))
	if r.Workload.Warmup > 0 {
		s += fmt.Sprintf("; sent after the first %v: %d, delivery p50 %.2fms p99 %.2fms max %.2fms", r.Workload.Warmup,
			r.Steady.Messages, ms(r.Steady.P50), ms(r.Steady.P99), ms(r.Steady.Max))
	}
	if r.Behind > 0 {
		s += fmt.Sprintf("; %d sends could not keep the rate", r.Behind)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

type pairState struct {
	send    func([]byte) error
	window  chan struct{}
	mu      sync.Mutex
	sentAt  []int64 // FIFO of send times, for send latency
	sendLat []time.Duration
	recvLat []time.Duration
	recvAt  []int64 // send times of recvLat's messages, with Timeline or Warmup
}

// Run sets up the pairs, runs the workload and measures it.
func Run(ctx context.Context, sys System, w Workload) (Result, error) {
	if w.Size < 16 {
		w.Size = 16
	}
	if w.Window < 1 {
		w.Window = 1
	}
	if err := sys.Setup(ctx, w.Pairs); err != nil {
		return Result{}, fmt.Errorf("%s setup: %w", sys.Name(), err)
	}
	var received, sent atomic.Int64
	target := int64(w.Messages)
	done := make(chan struct{})
	var doneOnce sync.Once
	pairs := make([]*pairState, w.Pairs)
	for i := range pairs {
		p := &pairState{window: make(chan struct{}, w.Window)}
		pairs[i] = p
		onSent := func() {
			now := time.Now().UnixNano()
			p.mu.Lock()
			if len(p.sentAt) > 0 {
				p.sendLat = append(p.sendLat, time.Duration(now-p.sentAt[0]))
				p.sentAt = p.sentAt[1:]
			}
			p.mu.Unlock()
			sent.Add(1)
			<-p.window
		}
		onRecv := func(content []byte) {
			now := time.Now().UnixNano()
			if len(content) >= 8 {
				t := int64(binary.BigEndian.Uint64(content))
				p.mu.Lock()
				p.recvLat = append(p.recvLat, time.Duration(now-t))
				if w.Timeline > 0 || w.Warmup > 0 {
					p.recvAt = append(p.recvAt, t)
				}
				p.mu.Unlock()
			}
			if n := received.Add(1); w.Rate == 0 && n >= target {
				doneOnce.Do(func() { close(done) })
			}
		}
		send, err := sys.Open(ctx, i, onSent, onRecv)
		if err != nil {
			sys.Close()
			return Result{}, fmt.Errorf("%s open pair %d: %w", sys.Name(), i, err)
		}
		p.send = send
	}

	var behind atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if w.Started != nil {
		w.Started()
	}
	start := time.Now()
	content := func(seq int) []byte {
		b := make([]byte, w.Size)
		binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint64(b[8:], uint64(seq))
		return b
	}
	sendOne := func(p *pairState, seq int) error {
		b := content(seq)
		p.mu.Lock()
		p.sentAt = append(p.sentAt, int64(binary.BigEndian.Uint64(b)))
		p.mu.Unlock()
		return p.send(b)
	}
	if w.Rate == 0 {
		per := (w.Messages + w.Pairs - 1) / w.Pairs
		target = int64(per * w.Pairs)
		for _, p := range pairs {
			wg.Go(func() {
				for seq := range per {
					select {
					case p.window <- struct{}{}:
					case <-stop:
						return
					}
					if err := sendOne(p, seq); err != nil {
						return
					}
				}
			})
		}
	} else {
		// Each sender sends at Rate/Pairs per second, from a random phase.
		interval := time.Duration(float64(time.Second) * float64(w.Pairs) / w.Rate)
		for i, p := range pairs {
			wg.Go(func() {
				time.Sleep(time.Duration(int64(interval) * int64(i) / int64(w.Pairs)))
				t := time.NewTicker(interval)
				defer t.Stop()
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					case <-t.C:
					}
					select {
					case p.window <- struct{}{}:
					default:
						behind.Add(1)
						continue
					}
					if err := sendOne(p, seq); err != nil {
						return
					}
				}
			})
		}
		go func() {
			time.Sleep(w.Duration)
			close(stop)
			wg.Wait()
			// Let what was sent arrive.
			deadline := time.Now().Add(10 * time.Second)
			for received.Load() < sent.Load() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			doneOnce.Do(func() { close(done) })
		}()
	}
	var timedOut bool
	select {
	case <-done:
	case <-ctx.Done():
		timedOut = true
	}
	elapsed := time.Since(start)
	if w.Rate == 0 {
		close(stop)
	}
	wg.Wait()
	sys.Close()
	r := Result{System: sys.Name(), Workload: w, Sent: sent.Load(), Received: received.Load(), Elapsed: elapsed, Behind: behind.Load()}
	if w.Rate > 0 {
		elapsed = w.Duration
	}
	r.PerSecond = float64(r.Received) / elapsed.Seconds()
	var recv, snd []time.Duration
	if w.Timeline > 0 {
		r.Timeline = timeline(pairs, start.UnixNano(), w.Timeline)
	}
	if w.Warmup > 0 {
		r.Steady = steady(pairs, start.Add(w.Warmup).UnixNano())
	}
	for _, p := range pairs {
		p.mu.Lock()
		recv = append(recv, p.recvLat...)
		snd = append(snd, p.sendLat...)
		p.mu.Unlock()
	}
	r.P50, r.P99, r.Max = percentiles(recv)
	r.SendP50, r.SendP99, _ = percentiles(snd)
	if timedOut {
		return r, fmt.Errorf("%s: timed out with %d of %d messages received", sys.Name(), r.Received, target)
	}
	return r, nil
}

func percentiles(d []time.Duration) (p50, p99, max time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	at := func(q float64) time.Duration {
		return d[int(math.Min(float64(len(d)-1), math.Ceil(q*float64(len(d)))-1))]
	}
	return at(0.50), at(0.99), d[len(d)-1]
}

// timeline groups the delivery latencies of pairs by send time into
// periods of length d from start (Unix nanoseconds).
func timeline(pairs []*pairState, start int64, d time.Duration) []Period {
	var byPeriod [][]time.Duration
	for _, p := range pairs {
		p.mu.Lock()
		for i, t := range p.recvAt {
			k := max(0, int((t-start)/int64(d)))
			for len(byPeriod) <= k {
				byPeriod = append(byPeriod, nil)
			}
			byPeriod[k] = append(byPeriod[k], p.recvLat[i])
		}
		p.mu.Unlock()
	}
	ps := make([]Period, len(byPeriod))
	for k, lat := range byPeriod {
		ps[k] = Period{Start: time.Duration(k) * d, Messages: len(lat)}
		ps[k].P50, ps[k].P99, ps[k].Max = percentiles(lat)
	}
	return ps
}

// steady is the delivery latency of the messages of pairs sent at or
// after from (Unix nanoseconds).
func steady(pairs []*pairState, from int64) Period {
	var lat []time.Duration
	for _, p := range pairs {
		p.mu.Lock()
		for i, t := range p.recvAt {
			if t >= from {
				lat = append(lat, p.recvLat[i])
			}
		}
		p.mu.Unlock()
	}
	r := Period{Messages: len(lat)}
	r.P50, r.P99, r.Max = percentiles(lat)
	return r
}
