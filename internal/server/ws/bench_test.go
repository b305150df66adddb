package ws

import (
	"net"
	"testing"
)

// BenchmarkReadMessage reads 256-byte text messages over loopback TCP,
// with the message deadline (as ReadMessage does) and without it, to
// show what the deadline costs on the read path.
func BenchmarkReadMessage(b *testing.B) {
	for _, deadline := range []bool{false, true} {
		name := "none"
		if deadline {
			name = "deadline"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			server, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			c := &Conn{conn: server, readLimit: 1 << 20}
			defer c.Kill()
			frame := clientFrame(true, OpText, make([]byte, 256))
			go func() {
				batch := make([]byte, 0, 64*len(frame))
				for range 64 {
					batch = append(batch, frame...)
				}
				for i := 0; i < b.N; i += 64 {
					if _, err := client.Write(batch); err != nil {
						return
					}
				}
			}()
			onFrame := c.busy
			if !deadline {
				onFrame = nil
			}
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for range b.N {
				if _, _, err := readMessage(c, c.readLimit, c.control, onFrame); err != nil {
					b.Fatal(err)
				}
				if deadline {
					c.busy(false)
				}
			}
		})
	}
}
