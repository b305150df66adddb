package pgstore

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hushmsg/hush/internal/server/store"
	"github.com/hushmsg/hush/internal/server/store/pgstore/pgtest"
)

// BenchmarkMailbox is a cluster node's share of the work of one message:
// 32 pairs, each sender's message group-committed (EnqueueBatch), read by
// its recipient (Pending) and acknowledged (Ack), one at a time per pair.
// Besides the wall time it reports the CPU time of the store's PostgreSQL
// backends per message (pg-µs/msg; PostgreSQL must run on this machine),
// which a busy machine disturbs less.
func BenchmarkMailbox(b *testing.B) {
	const pairs = 32
	url := pgtest.URL(b)
	app := fmt.Sprintf("hush_bench_%d", os.Getpid())
	s := open(b, url+"&application_name="+app)
	defer s.Close()
	ctx := context.Background()
	var refs [2 * pairs]store.DeviceRef
	for i := range refs {
		_, d, err := s.CreateAccount(ctx, store.NewAccount{Username: fmt.Sprint("u", i), PasswordHash: "h"}, store.NewDevice{TokenHash: []byte("t")})
		if err != nil {
			b.Fatal(err)
		}
		refs[i] = d.Ref
	}
	pgCPU := func() time.Duration {
		var t time.Duration
		rows, err := s.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
		if err != nil {
			b.Fatal(err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			b.Fatal(err)
		}
		for _, pid := range pids {
			t += procCPU(b, int(pid))
		}
		return t
	}
	b.ResetTimer()
	c0 := pgCPU()
	var wg sync.WaitGroup
	for p := range pairs {
		from, to := refs[2*p], refs[2*p+1]
		n := b.N / pairs
		if p < b.N%pairs {
			n++
		}
		wg.Go(func() {
			var last int64
			for i := range n {
				m := &store.Message{To: to, From: from, PublicID: int64(i), Content: make([]byte, 256), ExpiresAt: 1 << 50}
				if res, err := s.EnqueueBatch(ctx, []*store.Message{m}, 1000, 1000); err != nil || res[0].Err != nil {
					b.Error(err, res)
					return
				}
				ms, err := s.Pending(ctx, to, last, 0, 256)
				if err != nil || len(ms) != 1 {
					b.Error(err, len(ms))
					return
				}
				last = ms[0].ID
				if err := s.Ack(ctx, to, []int64{ms[0].PublicID}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((pgCPU()-c0).Microseconds())/float64(b.N), "pg-µs/msg")
}

// procCPU is the CPU time (user and system) of process pid, from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("PostgreSQL's processes are not readable here: %v", err)
	}
	f := strings.Fields(string(buf[strings.LastIndexByte(string(buf), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100
}
