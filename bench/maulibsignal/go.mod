module github.com/hushmsg/hush/bench/maulibsignal

go 1.26

require go.mau.fi/libsignal v0.2.1

require (
	filippo.io/edwards25519 v1.1.0 // indirect
	golang.org/x/crypto v0.42.0 // indirect
	google.golang.org/protobuf v1.36.10 // indirect
)
