package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/apiclient"
	"github.com/hushmsg/hush/key"
)

// The fan-out workload (issue 10, "Performance"): one message to every
// member of a group of Members one-device accounts, sent by one device
// either as one group send (POST /v1/groups/messages, the one content
// fanned out by hushd) or as Members one-to-one sends over the sender's
// WebSocket (Window in flight), in alternating rounds on the same hushd,
// accounts and connections. A round starts when the sender starts sending
// and ends when the last member has the message; the next round starts
// then, so that a round measures one fan-out alone.

// FanoutWorkload describes a fan-out run.
type FanoutWorkload struct {
	Members int
	Rounds  int // measured rounds of each kind, after one warm-up round of each
	Size    int // content bytes, at least 16
	Window  int // one-to-one sends in flight
	// CPU, if set, returns hushd's CPU time so far: each round's share is
	// counted to its kind.
	CPU func() time.Duration
}

// Fanout kinds.
const (
	KindGroup    = "group"
	KindOneToOne = "1to1"
)

// FanoutRound is one measured round.
type FanoutRound struct {
	Kind string
	// Last is from the round's start to the last member's delivery.
	Last time.Duration
	// Deliveries are each member's delivery time, from the round's start.
	Deliveries []time.Duration
	CPU        time.Duration // hushd's, if FanoutWorkload.CPU is set
}

// FanoutResult is what a fan-out run measured, per kind.
type FanoutResult struct {
	Workload FanoutWorkload
	Rounds   []FanoutRound
}

// FanoutStats sums up the rounds of one kind.
type FanoutStats struct {
	Rounds int
	// PerSecond: deliveries per second while rounds of this kind ran.
	PerSecond float64
	// Last: p50 and p99 of the rounds' send-to-last-delivery times.
	LastP50, LastP99 time.Duration
	// Delivery: p50 and p99 of every delivery's time from its round's start.
	DeliveryP50, DeliveryP99 time.Duration
	CPUPerDelivery           time.Duration
}

// Stats sums up the rounds of kind.
func (r FanoutResult) Stats(kind string) FanoutStats {
	var s FanoutStats
	var last, del []time.Duration
	var busy, cpu time.Duration
	n := 0
	for _, rd := range r.Rounds {
		if rd.Kind != kind {
			continue
		}
		s.Rounds++
		last = append(last, rd.Last)
		del = append(del, rd.Deliveries...)
		busy += rd.Last
		cpu += rd.CPU
		n += len(rd.Deliveries)
	}
	if busy > 0 {
		s.PerSecond = float64(n) / busy.Seconds()
	}
	if n > 0 {
		s.CPUPerDelivery = cpu / time.Duration(n)
	}
	s.LastP50, s.LastP99, _ = percentiles(last)
	s.DeliveryP50, s.DeliveryP99, _ = percentiles(del)
	return s
}

// Benchstat returns the rounds as Go benchmark lines, one per round
// (benchstat -col /kind): ns/op is the round's send to last delivery.
func (r FanoutResult) Benchstat() string {
	out := ""
	for _, rd := range r.Rounds {
		n := float64(len(rd.Deliveries))
		out += fmt.Sprintf("BenchmarkFanout/kind=%s/members=%d\t1\t%d ns/op\t%.0f deliveries/s",
			rd.Kind, r.Workload.Members, rd.Last.Nanoseconds(), n/rd.Last.Seconds())
		if rd.CPU > 0 {
			out += fmt.Sprintf("\t%.0f hushd-cpu-ns/delivery", float64(rd.CPU.Nanoseconds())/n)
		}
		out += "\n"
	}
	return out
}

func (r FanoutResult) String() string {
	g, o := r.Stats(KindGroup), r.Stats(KindOneToOne)
	line := func(name string, s FanoutStats) string {
		l := fmt.Sprintf("%-5s %d rounds: %.0f deliveries/s; send to last delivery p50 %.1fms p99 %.1fms; delivery p50 %.1fms p99 %.1fms",
			name, s.Rounds, s.PerSecond, ms(s.LastP50), ms(s.LastP99), ms(s.DeliveryP50), ms(s.DeliveryP99))
		if s.CPUPerDelivery > 0 {
			l += fmt.Sprintf("; hushd CPU %.1f µs/delivery", float64(s.CPUPerDelivery.Nanoseconds())/1e3)
		}
		return l + "\n"
	}
	s := fmt.Sprintf("fan-out to %d members, %d bytes, one-to-one window %d\n", r.Workload.Members, r.Workload.Size, r.Workload.Window)
	s += line(KindGroup, g) + line(KindOneToOne, o)
	if o.PerSecond > 0 && g.LastP99 > 0 {
		s += fmt.Sprintf("group / one-to-one: deliveries/s %.2fx, p99 send to last delivery %.2fx", g.PerSecond/o.PerSecond, float64(g.LastP99)/float64(o.LastP99))
		if o.CPUPerDelivery > 0 {
			s += fmt.Sprintf(", hushd CPU per delivery %.2fx", float64(g.CPUPerDelivery)/float64(o.CPUPerDelivery))
		}
		s += "\n"
	}
	return s
}

// content header: send time (8 bytes), round (4), kind (1).
const fanoutHeader = 13

// Fanout runs the fan-out workload.
func (h *Hushd) Fanout(ctx context.Context, w FanoutWorkload) (FanoutResult, error) {
	w.Size = max(w.Size, fanoutHeader)
	w.Window = max(w.Window, 1)
	if w.Members < 1 || w.Rounds < 1 {
		return FanoutResult{}, fmt.Errorf("members and rounds must be positive")
	}
	if h.Prefix == "" {
		h.Prefix = "g" + fmt.Sprint(time.Now().UnixNano()%1e9)
	}
	sender, err := h.Register(ctx, "s", 1)
	if err != nil {
		return FanoutResult{}, err
	}
	members, err := h.Register(ctx, "m", w.Members)
	if err != nil {
		return FanoutResult{}, err
	}
	if err := h.ordinaryKeys(ctx, members); err != nil {
		return FanoutResult{}, err
	}

	// Every member reads its WebSocket and acknowledges what it gets.
	var mu sync.Mutex
	var round struct {
		n, kind  int
		got      int
		times    []time.Duration
		complete chan struct{}
	}
	deliver := func(c []byte) {
		now := time.Now()
		if len(c) < fanoutHeader {
			return
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(c)))
		n, kind := int(binary.BigEndian.Uint32(c[8:])), int(c[12])
		mu.Lock()
		defer mu.Unlock()
		if n != round.n || kind != round.kind {
			return // a copy of an earlier round, delivered again
		}
		round.times = append(round.times, now.Sub(at))
		if round.got++; round.got == w.Members {
			close(round.complete)
		}
	}
	defer h.Close()
	sem := make(chan struct{}, 64)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for i, cred := range members {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := h.Client(i+1, cred)
			var conn *apiclient.Conn
			if err == nil {
				conn, err = c.Connect(ctx)
			}
			if err != nil {
				select {
				case errs <- fmt.Errorf("connecting member %d: %w", i, err):
				default:
				}
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, conn)
			h.mu.Unlock()
			go func() {
				var ids []int64
				for {
					fs, err := conn.NextBatch(ctx)
					if err != nil {
						return
					}
					ids = ids[:0]
					for _, f := range fs {
						if f.Type == api.FrameMessage {
							deliver(f.Msg.Content)
							ids = append(ids, f.Msg.ID)
						}
					}
					if len(ids) > 0 {
						conn.Ack(ctx, ids...)
					}
				}
			}()
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return FanoutResult{}, err
	default:
	}

	// The sender: group sends over HTTP, one-to-one sends over its
	// WebSocket with Window in flight.
	sc, err := h.Client(0, sender[0])
	if err != nil {
		return FanoutResult{}, err
	}
	sconn, err := sc.Connect(ctx)
	if err != nil {
		return FanoutResult{}, err
	}
	h.mu.Lock()
	h.conns = append(h.conns, sconn)
	h.mu.Unlock()
	window := make(chan struct{}, w.Window)
	var sendErrs atomic.Int64
	go func() {
		for {
			fs, err := sconn.NextBatch(ctx)
			if err != nil {
				return
			}
			for _, f := range fs {
				switch f.Type {
				case api.FrameSent:
					<-window
				case api.FrameError:
					if sendErrs.Add(1) < 5 {
						fmt.Fprintf(os.Stderr, "hushd send error: %+v\n", f.Error)
					}
					<-window
				}
			}
		}
	}()
	devices := make([]api.GroupDevice, w.Members)
	for i := range devices {
		devices[i] = api.GroupDevice{Username: fmt.Sprintf("%sm%d", h.Prefix, i), Device: 1}
	}
	var reqID uint64
	send := func(n, kind int) error {
		b := make([]byte, w.Size)
		binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint32(b[8:], uint32(n))
		b[12] = byte(kind)
		if kind == 0 {
			_, err := sc.SendGroup(ctx, api.GroupSend{Devices: devices, Type: api.TypeSenderKey, Content: b})
			return err
		}
		for _, d := range devices {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			reqID++
			if err := sconn.Send(ctx, reqID, d.Username, 1, api.SendMessage{Type: 1, Content: b}); err != nil {
				return err
			}
		}
		return nil
	}

	res := FanoutResult{Workload: w}
	for n := range 2 * (w.Rounds + 1) {
		kind := n % 2
		mu.Lock()
		round.n, round.kind, round.got, round.times = n, kind, 0, make([]time.Duration, 0, w.Members)
		round.complete = make(chan struct{})
		done := round.complete
		mu.Unlock()
		var cpu0 time.Duration
		if w.CPU != nil {
			cpu0 = w.CPU()
		}
		start := time.Now()
		if err := send(n, kind); err != nil {
			return res, fmt.Errorf("round %d: %w", n, err)
		}
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			mu.Lock()
			got := round.got
			mu.Unlock()
			return res, fmt.Errorf("round %d: %d of %d members had the message after 2 minutes", n, got, w.Members)
		case <-ctx.Done():
			return res, ctx.Err()
		}
		last := time.Since(start)
		if n < 2 {
			continue // warm-up
		}
		rd := FanoutRound{Kind: KindGroup, Last: last}
		if kind == 1 {
			rd.Kind = KindOneToOne
		}
		if w.CPU != nil {
			rd.CPU = w.CPU() - cpu0
		}
		mu.Lock()
		rd.Deliveries = round.times
		mu.Unlock()
		res.Rounds = append(res.Rounds, rd)
	}
	if n := sendErrs.Load(); n > 0 {
		return res, fmt.Errorf("%d one-to-one sends failed", n)
	}
	return res, nil
}

// ordinaryKeys gives each account an account identity and ordinary keys
// on its device 1 (a signed prekey and a last-resort Kyber prekey), so
// that its device takes part in group sends; 32 accounts at a time.
func (h *Hushd) ordinaryKeys(ctx context.Context, creds []string) error {
	sem := make(chan struct{}, 32)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for i, cred := range creds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.uploadOrdinary(ctx, i, cred); err != nil {
				select {
				case errs <- fmt.Errorf("ordinary keys of account %d: %w", i, err):
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (h *Hushd) uploadOrdinary(ctx context.Context, i int, cred string) error {
	c, err := h.Client(i, cred)
	if err != nil {
		return err
	}
	defer c.CloseIdle()
	ik, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		return err
	}
	ec, err := key.GenerateECKeyPair(rand.Reader)
	if err != nil {
		return err
	}
	kem, err := key.GenerateKEMKeyPair(rand.Reader)
	if err != nil {
		return err
	}
	spk, lr := ec.Public.Bytes(), kem.Public.Bytes()
	s1, err := ik.Sign(rand.Reader, spk)
	if err != nil {
		return err
	}
	s2, err := ik.Sign(rand.Reader, lr)
	if err != nil {
		return err
	}
	if err := c.SetAccountIdentity(ctx, api.SetAccountIdentity{IdentityKey: ik.Public.Bytes()}); err != nil {
		return err
	}
	return c.UploadOrdinaryKeys(ctx, api.OrdinaryKeyUpload{RegistrationID: uint32(i%16000 + 1), KeyUpload: api.KeyUpload{
		SignedPreKey:    &api.SignedKey{KeyID: 1, PublicKey: spk, Signature: s1},
		KyberLastResort: &api.SignedKey{KeyID: 2, PublicKey: lr, Signature: s2},
	}})
}
