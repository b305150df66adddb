package store

import (
	"crypto/rand"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/content"
)

// The durable write of one ordinary message to 2 x 5 devices, without the
// protocol (issue 9, Performance; docs/performance.md): what
// BenchmarkOrdinaryFanOut (internal/client) must make durable before the
// message leaves, as bytes of the same sizes (its record-B and
// request-B/op): 10 sealed session records written back, the message and
// its outbox row, committed with synchronous=FULL, then the unsynced
// transaction that marks it sent. The row holds a mark of 13 bytes, not
// the request (internal/client ordinaryAgain; until December 2026 it held
// the whole request, 26.6 KB: -request 26600 measures that). "sqlite"
// writes them through this store's statements; "file" is the operating
// system's floor for the same bytes, one write and one fsync.

const (
	durableRecords = 10
	durableRecord  = 2379 + nonceSize + 16 // a sealed record of the benchmark
)

var durableRequest = flag.Int("request", len("encrypt again"), "BenchmarkDurableWrite: the outbox row's request, in bytes")

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// touch changes a byte in every 256 of b, so that no page of it is
// written unchanged (SQLite skips writing a page whose bytes are the same,
// while a record sealed anew differs everywhere).
func touch(b []byte, i int) {
	for j := 0; j < len(b); j += 256 {
		b[j] = byte(i)
	}
}

func BenchmarkDurableWrite(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		ctx := b.Context()
		s := open(b, filepath.Join(b.TempDir(), "home"), Options{Create: true})
		recs := make([][]byte, durableRecords)
		args := make([]any, 0, 3*durableRecords)
		for i := range recs {
			recs[i] = make([]byte, durableRecord)
			rand.Read(recs[i])
			args = append(args, []string{"bob", "alice"}[i/5], i%5+1, recs[i])
		}
		req := make([]byte, *durableRequest)
		rand.Read(req)
		upsert := "INSERT INTO o_sessions (name, device, record) VALUES (?, ?, ?)" +
			strings.Repeat(", (?, ?, ?)", durableRecords-1) + " ON CONFLICT (name, device) DO UPDATE SET record = excluded.record"
		b.ReportAllocs()
		start := cpuTime()
		b.ResetTimer()
		for i := range b.N {
			for _, r := range recs {
				touch(r, i)
			}
			touch(req, i)
			m := &Message{Peer: "bob", MsgID: content.NewID(), Outgoing: true, Kind: KindText,
				Body: "a message of ordinary length, like most of them are", SentAt: time.Now(), Shown: true, State: StatePending, Device: 1}
			err := s.Update(ctx, func(tx *Tx) error {
				if _, err := tx.x.ExecContext(ctx, upsert, args...); err != nil {
					return err
				}
				if _, err := tx.AddMessage(ctx, m); err != nil {
					return err
				}
				return tx.AddOutgoing(ctx, &Outgoing{Message: m.ID, Peer: m.Peer, Request: req})
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.UpdateUnsynced(ctx, func(tx *Tx) error { return tx.SetSent(ctx, m.ID, 1) }); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e3, "cpu-µs/op")
	})
	b.Run("file", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, durableRecords*durableRecord+*durableRequest)
		rand.Read(buf)
		start := cpuTime()
		b.ResetTimer()
		for i := range b.N {
			touch(buf, i)
			if _, err := f.WriteAt(buf, int64(i%64)*int64(len(buf))); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e3, "cpu-µs/op")
	})
}
