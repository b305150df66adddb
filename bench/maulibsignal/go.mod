module github.com/hushmsg/hush/bench/maulibsignal

go 1.26.0

require go.mau.fi/libsignal v0.2.1

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/cloudflare/circl v1.6.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

require github.com/hushmsg/hush v0.0.0

replace github.com/hushmsg/hush => ../..
