package client

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
)

// Sending one ordinary message to 2 x 5 devices (issue 9, Performance):
// bob's 5 devices and the 5 other devices of alice's 6, 10 ciphertexts. The
// floor is the protocol alone: 10 session encryptions of the same content,
// on in-memory stores that keep records serialized. The engine adds the
// store (records sealed in SQLite, one transaction for the whole fan-out
// and its outbox row), the request's JSON, and the transaction that
// records the server's acceptance. The HTTPS request is not counted: it
// is one request either way, and its cost is the transport's.

// benchDevice is a peer device: its bundle (one-time keys: every
// encryption of a session that was never answered repeats them).
func benchBundle(b *testing.B, account *key.IdentityKeyPair, dev uint32) *session.Bundle {
	now := time.Now()
	spk, err := key.GenerateSignedPreKey(rand.Reader, 1, account, now)
	if err != nil {
		b.Fatal(err)
	}
	kpk, err := key.GenerateKyberPreKey(rand.Reader, 2, account, now)
	if err != nil {
		b.Fatal(err)
	}
	opk, err := key.GeneratePreKey(rand.Reader, 3)
	if err != nil {
		b.Fatal(err)
	}
	return &session.Bundle{RegistrationID: key.RegistrationID(100 + dev), DeviceID: key.DeviceID(dev), IdentityKey: account.Public,
		SignedPreKeyID: spk.ID, SignedPreKey: spk.KeyPair.Public, SignedPreKeySignature: spk.Signature,
		PreKeyID: &opk.ID, PreKey: &opk.KeyPair.Public,
		KyberPreKeyID: &kpk.ID, KyberPreKey: kpk.KeyPair.Public, KyberPreKeySignature: kpk.Signature}
}

type benchPeer struct {
	addr   session.Address
	bundle *session.Bundle
}

func benchPeers(b *testing.B, alice *key.IdentityKeyPair, n int) []benchPeer {
	bob, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	var ps []benchPeer
	for d := uint32(1); d <= 5; d++ {
		ps = append(ps, benchPeer{session.Address{Name: "bob", Device: key.DeviceID(d)}, benchBundle(b, bob, d)})
	}
	for d := uint32(2); d <= 6; d++ {
		ps = append(ps, benchPeer{session.Address{Name: "alice", Device: key.DeviceID(d)}, benchBundle(b, alice, d)})
	}
	if n == 1 {
		return ps[:1] // bob's first device only
	}
	return ps
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e3, "cpu-µs/op")
}

// written is what the process passed to write calls so far, in bytes and
// calls (Linux's /proc/self/io; zeros elsewhere): what the store writes,
// which the machine's load does not change, unlike CPU time.
func written() (bytes, calls int64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "wchar":
			bytes = n
		case "syscw":
			calls = n
		}
	}
	return bytes, calls
}

func BenchmarkOrdinaryFanOut(b *testing.B) {
	for _, n := range []int{10, 1} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) { benchFanOut(b, n) })
	}
}

func benchFanOut(b *testing.B, n int) {
	body := "a message of ordinary length, like most of them are"
	b.Run("floor", func(b *testing.B) {
		ctx := b.Context()
		alice, err := key.GenerateIdentityKeyPair(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		ms := session.NewMemoryStore(alice, 7)
		ci := &session.Cipher{Store: ms, Local: session.Address{Name: "alice", Device: 1}, PQRatchet: session.PQRequired}
		peers := benchPeers(b, alice, n)
		for _, p := range peers {
			if err := ci.ProcessBundle(ctx, p.addr, p.bundle); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			cm := &content.Message{ID: content.NewID(), SentAt: time.Now(), Body: body, Ordinary: true}
			pt, err := cm.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range peers {
				if _, err := ci.Encrypt(ctx, p.addr, pt); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		reportCPU(b, start)
	})
	b.Run("engine", func(b *testing.B) {
		ctx := b.Context()
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), "alice"), store.Options{Create: true})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		secret, err := key.GenerateIdentityKeyPair(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		alice, err := key.GenerateIdentityKeyPair(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		acct := &store.Account{Server: "https://127.0.0.1:1", Servers: []string{"https://127.0.0.1:1"}, Fingerprint: fmt.Sprintf("%064d", 0), Username: "alice", DeviceID: 1, Credential: "x", RegistrationID: 7}
		peers := benchPeers(b, alice, n)
		c, err := newClient(st, acct, Options{})
		if err != nil {
			b.Fatal(err)
		}
		err = st.Update(ctx, func(tx *store.Tx) error {
			if err := tx.SetAccount(ctx, acct, secret); err != nil {
				return err
			}
			if err := tx.SetAccountIdentity(ctx, alice); err != nil {
				return err
			}
			if err := tx.SetOrdinaryRegistrationID(ctx, 8); err != nil {
				return err
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		err = st.Update(ctx, func(tx *store.Tx) error {
			ci := c.ordinaryCipher(tx.Ordinary())
			for _, p := range peers {
				if err := ci.ProcessBundle(ctx, p.addr, p.bundle); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		reqBytes := 0
		wb, wc := written()
		start := cpuTime()
		b.ResetTimer()
		for i := range b.N {
			m := &store.Message{Peer: "bob", MsgID: content.NewID(), Outgoing: true, Kind: store.KindText,
				Body: body, SentAt: time.Now().Truncate(time.Millisecond), Shown: true, State: store.StatePending, Device: 1}
			out, devs, err := c.encryptOrdinary(ctx, m, &fanState{})
			if err != nil {
				b.Fatal(err)
			}
			if got := len(devs["bob"]) + len(devs["alice"]); i == 0 && got != n {
				b.Fatalf("%d ciphertexts", got) // the first send records the devices
			}
			reqBytes += len(out.Request)
			if err := c.ordinarySent(ctx, out, devs, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportCPU(b, start)
		if wb2, wc2 := written(); wb2 > 0 {
			b.ReportMetric(float64(wb2-wb)/float64(b.N), "written-B/op")
			b.ReportMetric(float64(wc2-wc)/float64(b.N), "writes/op")
		}
		b.ReportMetric(float64(reqBytes)/float64(b.N), "request-B/op")
		recs, err := st.Read().Keys(store.OrdinarySpace).LoadSessions(ctx, "bob", "alice")
		if err != nil {
			b.Fatal(err)
		}
		size := 0
		for _, r := range recs {
			rb, _ := r.MarshalBinary()
			size += len(rb)
		}
		b.ReportMetric(float64(size)/float64(len(recs)), "record-B")
	})
}
