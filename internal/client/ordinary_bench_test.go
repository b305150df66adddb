package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hushmsg/hush/internal/api"
	"github.com/hushmsg/hush/internal/client/store"
	"github.com/hushmsg/hush/internal/content"
	"github.com/hushmsg/hush/internal/history"
	"github.com/hushmsg/hush/key"
	"github.com/hushmsg/hush/session"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sending one ordinary message to 2 x 5 devices (issue 9, Performance):
// bob's 5 devices and the 5 other devices of alice's 6, 10 ciphertexts. The
// floor is the protocol alone: 10 session encryptions of the same content,
// on in-memory stores that keep records serialized. The engine adds the
// store (records sealed in SQLite, one transaction for the whole fan-out
// and its outbox row), the request's JSON, and the transaction that
// records the server's acceptance. The HTTPS request is not counted: it
// is one request either way, and its cost is the transport's.

// benchBundle is a peer device: its bundle (one-time keys: every
// encryption of a session that was never answered repeats them) and its
// store, which holds the private keys, for answering.
func benchBundle(b *testing.B, account *key.IdentityKeyPair, dev uint32) (*session.Bundle, *session.MemoryStore) {
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
	ms := session.NewMemoryStore(account, key.RegistrationID(100+dev))
	ms.StoreSignedPreKey(spk)
	ms.StoreKyberPreKey(kpk, false)
	ms.StorePreKey(opk)
	return &session.Bundle{RegistrationID: key.RegistrationID(100 + dev), DeviceID: key.DeviceID(dev), IdentityKey: account.Public,
		SignedPreKeyID: spk.ID, SignedPreKey: spk.KeyPair.Public, SignedPreKeySignature: spk.Signature,
		PreKeyID: &opk.ID, PreKey: &opk.KeyPair.Public,
		KyberPreKeyID: &kpk.ID, KyberPreKey: kpk.KeyPair.Public, KyberPreKeySignature: kpk.Signature}, ms
}

type benchPeer struct {
	addr   session.Address
	bundle *session.Bundle
	store  *session.MemoryStore
}

// benchAnswer has every peer answer alice's first message, as a
// conversation's peers do: alice's sessions are then acknowledged (no
// pending prekey repeated in every message: Signal messages, records of
// about 800 bytes instead of 2.4 KB). enc and dec are alice's.
func benchAnswer(b *testing.B, peers []benchPeer, enc func(session.Address, []byte) (*session.Ciphertext, error),
	dec func(session.Address, *session.Ciphertext) error) {
	ctx := b.Context()
	alice := session.Address{Name: "alice", Device: 1}
	for _, p := range peers {
		ct, err := enc(p.addr, []byte("hello"))
		if err != nil {
			b.Fatal(err)
		}
		pc := &session.Cipher{Store: p.store, Local: p.addr, PQRatchet: session.PQRequired}
		if _, err := pc.Decrypt(ctx, alice, ct.Type, ct.Body); err != nil {
			b.Fatal(err)
		}
		reply, err := pc.Encrypt(ctx, alice, []byte("hello to you"))
		if err != nil {
			b.Fatal(err)
		}
		if err := dec(p.addr, reply); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCipher is alice's cipher over st with sessions to the n devices
// of benchPeers, each of which has answered if answered.
func benchCipher(b *testing.B, st session.Store, alice *key.IdentityKeyPair, n int, answered bool) (*session.Cipher, []benchPeer) {
	ctx := b.Context()
	ci := &session.Cipher{Store: st, Local: session.Address{Name: "alice", Device: 1}, PQRatchet: session.PQRequired}
	peers := benchPeers(b, alice, n)
	for _, p := range peers {
		if err := ci.ProcessBundle(ctx, p.addr, p.bundle); err != nil {
			b.Fatal(err)
		}
	}
	if answered {
		benchAnswer(b, peers, func(a session.Address, pt []byte) (*session.Ciphertext, error) { return ci.Encrypt(ctx, a, pt) },
			func(a session.Address, ct *session.Ciphertext) error {
				_, err := ci.Decrypt(ctx, a, ct.Type, ct.Body)
				return err
			})
	}
	return ci, peers
}

func benchPeers(b *testing.B, alice *key.IdentityKeyPair, n int) []benchPeer {
	bob, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	var ps []benchPeer
	for d := uint32(1); d <= 5; d++ {
		bu, st := benchBundle(b, bob, d)
		ps = append(ps, benchPeer{session.Address{Name: "bob", Device: key.DeviceID(d)}, bu, st})
	}
	for d := uint32(2); d <= 6; d++ {
		bu, st := benchBundle(b, alice, d)
		ps = append(ps, benchPeer{session.Address{Name: "alice", Device: key.DeviceID(d)}, bu, st})
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

// BenchmarkOrdinaryFanOut: devices=N, sessions never answered (the first
// messages of a conversation: PreKey messages); devices=10-answered, every
// peer answered once (the messages after: Signal messages).
func BenchmarkOrdinaryFanOut(b *testing.B) {
	for _, n := range []int{10, 1} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) { benchFanOut(b, n, false) })
	}
	b.Run("devices=10-answered", func(b *testing.B) { benchFanOut(b, 10, true) })
}

func benchFanOut(b *testing.B, n int, answered bool) {
	body := "a message of ordinary length, like most of them are"
	b.Run("floor", func(b *testing.B) {
		ctx := b.Context()
		alice, err := key.GenerateIdentityKeyPair(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		ms := session.NewMemoryStore(alice, 7)
		ci, peers := benchCipher(b, ms, alice, n, answered)
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
	b.Run("bound", func(b *testing.B) { benchBound(b, n, answered, body) })
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
		if answered {
			benchAnswer(b, peers, func(a session.Address, pt []byte) (ct *session.Ciphertext, err error) {
				err = st.Update(ctx, func(tx *store.Tx) error {
					ct, err = c.ordinaryCipher(tx.Ordinary()).Encrypt(ctx, a, pt)
					return err
				})
				return ct, err
			}, func(a session.Address, ct *session.Ciphertext) error {
				return st.Update(ctx, func(tx *store.Tx) error {
					_, err := c.ordinaryCipher(tx.Ordinary()).Decrypt(ctx, a, ct.Type, ct.Body)
					return err
				})
			})
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

// boundStore keeps the records decoded, as the engine's fan-out does
// (store.FanOutSessions), and appends each record it is given, serialized
// and sealed as the store seals it, to a journal buffer.
type boundStore struct {
	*session.MemoryStore
	recs    map[session.Address]*session.Record
	journal []byte
	seal    func(dst, pt []byte, row string) []byte
}

func (s *boundStore) LoadSession(_ context.Context, a session.Address) (*session.Record, error) {
	return s.recs[a], nil
}

func (s *boundStore) StoreSession(_ context.Context, a session.Address, r *session.Record) error {
	s.recs[a] = r
	pt, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	s.journal = s.seal(s.journal, pt, a.String())
	return nil
}

// benchBound is the measured bound of any engine that makes a send
// durable before it leaves (docs/performance.md): the protocol on records
// kept decoded, and what a send does beyond it whatever the store (the two
// franked contents, each record serialized and sealed, the message body
// sealed, the history record, the request's JSON), with the store itself
// replaced by its operating system's floor: the sealed records and
// message appended to a file with one write and one fsync (a send
// journal, without the journal's reading back, applying and collapsing).
func benchBound(b *testing.B, n int, answered bool, body string) {
	ctx := b.Context()
	alice, err := key.GenerateIdentityKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	k := make([]byte, chacha20poly1305.KeySize)
	rand.Read(k)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		b.Fatal(err)
	}
	seal := func(dst, pt []byte, row string) []byte {
		nonce := make([]byte, aead.NonceSize())
		rand.Read(nonce)
		dst = append(dst, nonce...)
		return aead.Seal(dst, nonce, pt, []byte("hush-store-v1 o_sessions record "+row))
	}
	ms := &boundStore{MemoryStore: session.NewMemoryStore(alice, 7), recs: make(map[session.Address]*session.Record), seal: seal}
	ci, peers := benchCipher(b, ms, alice, n, answered)
	kr := history.NewKeyring(time.Now())
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "journal"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var off int64
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	for range b.N {
		m := &store.Message{Peer: "bob", MsgID: content.NewID(), Outgoing: true, Kind: store.KindText,
			Body: body, SentAt: time.Now().Truncate(time.Millisecond), Shown: true, State: store.StatePending, Device: 1}
		cm := &content.Message{ID: m.MsgID, SentAt: m.SentAt, Body: m.Body, Ordinary: true}
		sync := *cm
		pt, com, err := frank(cm)
		if err != nil {
			b.Fatal(err)
		}
		sync.SyncTo = m.Peer
		syncPT, syncCom, err := frank(&sync)
		if err != nil {
			b.Fatal(err)
		}
		ms.journal = ms.journal[:0]
		req := api.OrdinarySend{}
		for i, name := range []string{"bob", "alice"} {
			r := api.OrdinaryRecipient{Username: name}
			for _, p := range peers {
				if p.addr.Name != name {
					continue
				}
				body, c := pt, com
				if i == 1 {
					body, c = syncPT, syncCom
				}
				ct, err := ci.Encrypt(ctx, p.addr, body)
				if err != nil {
					b.Fatal(err)
				}
				r.Devices = append(r.Devices, api.OrdinaryDeviceMessage{Device: uint32(p.addr.Device), RegistrationID: 9,
					Type: api.TypeOrdinaryPreKey, Content: ct.Body, Commitment: c})
			}
			req.Recipients = append(req.Recipients, r)
		}
		ms.journal = seal(ms.journal, []byte(m.Body), "message")
		rec, err := historyRecord(kr, m)
		if err != nil {
			b.Fatal(err)
		}
		req.History = []api.HistoryRecord{rec}
		if _, err := json.Marshal(req); err != nil {
			b.Fatal(err)
		}
		if _, err := f.WriteAt(ms.journal, off); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		off = (off + int64(len(ms.journal))) % (64 << 20)
	}
	b.StopTimer()
	reportCPU(b, start)
}
