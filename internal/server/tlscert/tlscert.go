// Package tlscert gives hushd its TLS certificate: the one the operator
// names, or a self-signed one it creates once in the data folder. Clients
// pin the certificate by its SHA-256 fingerprint.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names of the self-signed certificate in the data folder.
const (
	CertFile = "tls-cert.pem"
	KeyFile  = "tls-key.pem"
)

// Fingerprint is the lower-case hex SHA-256 of a certificate's DER bytes.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// Load reads a certificate and key (PEM) and returns them with the leaf's
// fingerprint.
// FileFingerprint returns the fingerprint of the first certificate in a
// PEM file, without its key: what every node of a cluster presents.
func FileFingerprint(certFile string) (string, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return "", err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return "", fmt.Errorf("%s: no PEM certificate", certFile)
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return "", fmt.Errorf("%s: %v", certFile, err)
			}
			return Fingerprint(blk.Bytes), nil
		}
	}
}

func Load(certFile, keyFile string) (tls.Certificate, string, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("tlscert: %w", err)
	}
	return c, Fingerprint(c.Certificate[0]), nil
}

// LoadOrCreate returns the self-signed certificate in dir, creating it
// first if there is none.
func LoadOrCreate(dir string) (tls.Certificate, string, error) {
	cf, kf := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if _, err := os.Stat(cf); errors.Is(err, fs.ErrNotExist) {
		if err := create(dir, cf, kf); err != nil {
			return tls.Certificate{}, "", err
		}
	}
	return Load(cf, kf)
}

// create writes a new self-signed ECDSA P-256 certificate valid for ten
// years, for localhost, the loopback addresses and this host's name.
func create(dir, certFile, keyFile string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hushd self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	// The key first, so that a crash leaves no certificate without its key.
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile writes atomically: a temporary file, fsynced, then renamed.
func writeFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	return nil
}

// SessionTicketKey derives, from cert's private key, the key that encrypts
// TLS session tickets (tls.Config.SetSessionTicketKeys). The nodes of a
// cluster present one certificate, so they derive one ticket key: a client
// of a node that died resumes its session on another node, which saves
// the certificate signature there and the certificate's verification at
// the client (a reconnect storm: docs/performance.md). Resumption in TLS
// 1.3 still makes a fresh key exchange (Go offers only psk_dhe_ke), so the
// ticket key protects no traffic key; like the private key, it lets its
// holder pass for the server, and it changes when the certificate does.
func SessionTicketKey(cert tls.Certificate) ([32]byte, error) {
	var k [32]byte
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return k, fmt.Errorf("tlscert: session ticket key: %w", err)
	}
	b, err := hkdf.Key(sha256.New, der, nil, "hush tls session ticket key v1", len(k))
	if err != nil {
		return k, fmt.Errorf("tlscert: session ticket key: %w", err)
	}
	copy(k[:], b)
	return k, nil
}
