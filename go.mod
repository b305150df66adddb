module github.com/hushmsg/hush

go 1.26

require (
	filippo.io/edwards25519 v1.2.0
	github.com/cloudflare/circl v1.6.5
	google.golang.org/protobuf v1.36.12
)

require golang.org/x/sys v0.47.0 // indirect
