package sqlitestore

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/server/store"
)

// The benchmarks below follow one message through the store the way
// hush-load's throughput run does (100 sender/receiver pairs, 32 messages
// in flight per pair, 256-byte contents): a batch of sends is enqueued,
// then acknowledged, and the acknowledgement is applied by the next
// batch. Each reports, beside the wall time, the process's CPU time per
// message (cpu-ns/op), which other work on a shared machine disturbs
// less, counted only while the timer runs.

const (
	benchPairs  = 100
	benchWindow = 32
	// benchBatchSize is the number of messages per batch: how many the writer takes at once under load.
	benchBatchSize = 256
)

// benchStore opens a store with benchPairs sender and receiver accounts
// and a backlog of benchWindow messages queued for every receiver, which
// stay queued (the in-flight messages of the load test).
func benchStore(b *testing.B) (s *Store, senders, receivers []store.DeviceRef) {
	ctx := b.Context()
	s, err := Open(filepath.Join(b.TempDir(), "hush.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for i := range 2 * benchPairs {
		a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: fmt.Sprint("u", i), PasswordHash: "h"},
			store.NewDevice{TokenHash: fmt.Appendf(nil, "t%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		ref := store.DeviceRef{Account: a.ID, Device: 1}
		if i%2 == 0 {
			senders = append(senders, ref)
		} else {
			receivers = append(receivers, ref)
		}
	}
	for range benchWindow {
		benchEnqueue(b, s, benchBatch(senders, receivers, 0, benchPairs))
	}
	return s, senders, receivers
}

var benchPub int64 = 1 << 40

// benchBatch makes n messages, from pair first on, one per pair in turn.
func benchBatch(senders, receivers []store.DeviceRef, first, n int) []*store.Message {
	now := time.Now().UnixMilli()
	ms := make([]*store.Message, n)
	for i := range ms {
		p := (first + i) % len(senders)
		benchPub += 0x9E3779B97F4A7C15 >> 2 // scattered, like random public ids
		benchPub &= 1<<63 - 1
		ms[i] = &store.Message{PublicID: benchPub, To: receivers[p], From: senders[p], Type: 1,
			Content: make([]byte, 256), Timestamp: now, ExpiresAt: now + 1e9}
	}
	return ms
}

// benchEnqueue enqueues msgs and returns the ids their receivers
// acknowledge.
func benchEnqueue(b *testing.B, s *Store, msgs []*store.Message) []int64 {
	res, err := s.EnqueueBatch(b.Context(), msgs, 1<<30, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		if res[i].Err != nil {
			b.Fatal(res[i].Err)
		}
		ids[i] = m.PublicID
	}
	return ids
}

// benchAck acknowledges msgs (their ids) as their receivers would (one
// Ack per receiver), then waits until the deletion is committed.
func benchAck(b *testing.B, s *Store, msgs []*store.Message, ids []int64) {
	by := map[store.DeviceRef][]int64{}
	for i, m := range msgs {
		by[m.To] = append(by[m.To], ids[i])
	}
	for to, ids := range by {
		if err := s.Ack(b.Context(), to, ids); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.do(b.Context(), false, func(*wtx) error { return nil }); err != nil {
		b.Fatal(err)
	}
}

// cpuClock measures the process's CPU time (user and system) while the
// benchmark timer runs.
type cpuClock struct {
	b       *testing.B
	start   int64
	elapsed int64
}

func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func (c *cpuClock) Start() { c.b.StartTimer(); c.start = cpuNow() }
func (c *cpuClock) Stop()  { c.elapsed += cpuNow() - c.start; c.b.StopTimer() }
func (c *cpuClock) report() {
	if c.b.N > 0 {
		c.b.ReportMetric(float64(c.elapsed)/float64(c.b.N), "cpu-ns/op")
	}
}

// BenchmarkEnqueueBatch measures EnqueueBatch of benchWindow messages (one
// per pair in turn), per message; their acknowledgement is applied outside
// the timer.
func BenchmarkEnqueueBatch(b *testing.B) {
	s, snd, rcv := benchStore(b)
	c := &cpuClock{b: b}
	b.ResetTimer()
	c.Start()
	for i := 0; i < b.N; i += benchBatchSize {
		msgs := benchBatch(snd, rcv, i, min(benchBatchSize, b.N-i))
		ids := benchEnqueue(b, s, msgs)
		c.Stop()
		benchAck(b, s, msgs, ids)
		c.Start()
	}
	c.Stop()
	c.report()
}

// BenchmarkAck measures the deletion of acknowledged messages, per
// message: benchWindow messages enqueued outside the timer, then
// acknowledged and committed (with an otherwise empty batch).
func BenchmarkAck(b *testing.B) {
	s, snd, rcv := benchStore(b)
	c := &cpuClock{b: b}
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i += benchBatchSize {
		msgs := benchBatch(snd, rcv, i, min(benchBatchSize, b.N-i))
		ids := benchEnqueue(b, s, msgs)
		c.Start()
		benchAck(b, s, msgs, ids)
		c.Stop()
	}
	c.report()
}

// benchMembers is the group of BenchmarkEnqueueGroup.
const benchMembers = 1000

// BenchmarkEnqueueGroup measures a group send's EnqueueFanout (issue 10):
// one 256-byte content for the one device of each of benchMembers
// accounts, device lists checked, one copy stored per device; per copy,
// to set beside BenchmarkEnqueueBatch's per message. db-bytes/copy is how
// much the database grew for one such fanout, per copy: the content is
// stored once per device (messages.content), not once. Run it with a
// -benchtime that is a multiple of 1000x (whole fanouts).
func BenchmarkEnqueueGroup(b *testing.B) {
	ctx := b.Context()
	s, err := Open(filepath.Join(b.TempDir(), "hush.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sender := store.DeviceRef{}
	var members []store.DeviceRef
	keys := store.Keys{SignedPreKey: &store.SignedKey{ID: 1, PublicKey: []byte("spk"), Signature: []byte("sig")},
		KyberLastResort: &store.SignedKey{ID: 2, PublicKey: []byte("kyber"), Signature: []byte("sig")}}
	for i := range benchMembers + 1 {
		a, _, err := s.CreateAccount(ctx, store.NewAccount{Username: fmt.Sprint("m", i), PasswordHash: "h"},
			store.NewDevice{TokenHash: fmt.Appendf(nil, "t%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		ref := store.DeviceRef{Account: a.ID, Device: 1}
		if i == 0 {
			sender = ref
			continue
		}
		if err := s.SetOrdinaryKeys(ctx, ref, 1, keys); err != nil {
			b.Fatal(err)
		}
		members = append(members, ref)
	}
	content := make([]byte, 256)
	fanout := func() (store.Fanout, []int64) {
		now := time.Now().UnixMilli()
		f := store.Fanout{MaxQueue: 1 << 30, MaxPerSender: 1 << 30, SkipFull: true,
			Accounts: []store.FanoutAccount{{Account: sender.Account, Except: 1}}}
		ids := make([]int64, len(members))
		for i, m := range members {
			benchPub += 0x9E3779B97F4A7C15 >> 2
			benchPub &= 1<<63 - 1
			ids[i] = benchPub
			f.Accounts = append(f.Accounts, store.FanoutAccount{Account: m.Account, Devices: map[uint32]uint32{1: 0}})
			f.Messages = append(f.Messages, &store.Message{PublicID: benchPub, To: m, From: sender, Type: 7,
				Content: content, Timestamp: now, ExpiresAt: now + 1e9})
		}
		return f, ids
	}
	ack := func(ids []int64) {
		for i, m := range members {
			if err := s.Ack(ctx, m, ids[i:i+1]); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.do(ctx, false, func(*wtx) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	size := func() int64 {
		var n int64
		if err := s.rdb.QueryRowContext(ctx, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	// The database's growth for one fanout, on a database that has no
	// free pages yet.
	before := size()
	f, ids := fanout()
	if _, err := s.EnqueueFanout(ctx, f); err != nil {
		b.Fatal(err)
	}
	grown := size() - before
	ack(ids)

	c := &cpuClock{b: b}
	b.ResetTimer()
	c.Start()
	for i := 0; i < b.N; i += benchMembers {
		c.Stop()
		f, ids := fanout()
		c.Start()
		if _, err := s.EnqueueFanout(ctx, f); err != nil {
			b.Fatal(err)
		}
		c.Stop()
		ack(ids)
		c.Start()
	}
	c.Stop()
	c.report()
	b.ReportMetric(float64(grown)/benchMembers, "db-bytes/copy")
}

// BenchmarkEnqueueOne measures EnqueueBatch of one message each, from
// benchBatchSize callers at once (as hushd sends when every connection has
// one message in flight: the writer batches the calls), per message.
func BenchmarkEnqueueOne(b *testing.B) {
	s, snd, rcv := benchStore(b)
	c := &cpuClock{b: b}
	b.ResetTimer()
	c.Start()
	for i := 0; i < b.N; i += benchBatchSize {
		msgs := benchBatch(snd, rcv, i, min(benchBatchSize, b.N-i))
		var wg sync.WaitGroup
		for _, m := range msgs {
			wg.Go(func() {
				res, err := s.EnqueueBatch(b.Context(), []*store.Message{m}, 1<<30, 1<<30)
				if err == nil {
					err = res[0].Err
				}
				if err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		c.Stop()
		ids := make([]int64, len(msgs))
		for j, m := range msgs {
			ids[j] = m.PublicID
		}
		benchAck(b, s, msgs, ids)
		c.Start()
	}
	c.Stop()
	c.report()
}

// BenchmarkColdReads measures the reads of a pair's first message, per
// pair: the recipient's account and devices and the accounts it blocks
// (the send's checks), and the sender's account (its username, for the
// delivery). A thousand pairs starting at once make a thousand of these
// at once (docs/performance.md, "Latency").
func BenchmarkColdReads(b *testing.B) {
	s, snd, _ := benchStore(b)
	ctx := b.Context()
	c := &cpuClock{b: b}
	b.ResetTimer()
	c.Start()
	for i := 0; i < b.N; i++ {
		ref := snd[i%len(snd)]
		a, err := s.AccountByID(ctx, ref.Account)
		if err == nil {
			_, err = s.AccountByUsername(ctx, a.Username)
		}
		if err == nil {
			_, err = s.Devices(ctx, ref.Account)
		}
		if err == nil {
			_, err = s.Blocked(ctx, ref.Account)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	c.Stop()
	c.report()
}
