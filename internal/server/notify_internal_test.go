package server

import (
	"testing"

	"github.com/hushmsg/hush/internal/server/store"
)

// wakeRecorder is a Cluster that records the wake-ups it is asked for.
type wakeRecorder struct{ wakes [][]store.DeviceRef }

func (w *wakeRecorder) Attach(Node)             {}
func (w *wakeRecorder) Present(store.DeviceRef) {}
func (w *wakeRecorder) Absent(store.DeviceRef)  {}
func (w *wakeRecorder) Forget(Forget)           {}
func (w *wakeRecorder) Wake(refs []store.DeviceRef, _ []*store.Message) {
	w.wakes = append(w.wakes, refs)
}

// TestNotifyRemote: in a cluster, a commit wakes each device connected
// elsewhere once, in the order of its first message, however many devices
// (a group send's commit names thousands) and however its messages are
// interleaved.
func TestNotifyRemote(t *testing.T) {
	for _, n := range []int{1, 5, 31, 32, 33, 4096} {
		rec := &wakeRecorder{}
		var h hub
		h.init(&Server{cfg: Config{Cluster: rec}})
		var msgs []*store.Message
		for round := range 3 {
			for i := range n {
				to := store.DeviceRef{Account: int64(i/16 + 1), Device: uint32(i%16 + 1)}
				msgs = append(msgs, &store.Message{To: to})
				if round == 0 && i%3 == 0 {
					msgs = append(msgs, &store.Message{To: to}) // twice in a row
				}
			}
		}
		h.notify(msgs)
		if len(rec.wakes) != 1 || len(rec.wakes[0]) != n {
			t.Fatalf("n=%d: wakes %d, first of %d devices", n, len(rec.wakes), len(rec.wakes[0]))
		}
		for i, r := range rec.wakes[0] {
			if want := (store.DeviceRef{Account: int64(i/16 + 1), Device: uint32(i%16 + 1)}); r != want {
				t.Fatalf("n=%d: wake %d is %v, want %v", n, i, r, want)
			}
		}
	}
}
