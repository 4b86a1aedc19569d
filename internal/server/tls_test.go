package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"github.com/ironpool/ironpool/internal/testlog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/cli"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key to
// dir and returns their paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ironpool test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// serveCLI runs `ironpool serve` with args in the background, the way an
// operator starts it, and returns its URL once it is listening.
func serveCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	if !slices.Contains(args, "--data-dir") {
		t.Fatal("serveCLI needs --data-dir, or the server would use the real home directory")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &testlog.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...),
			cli.Env{Stdin: strings.NewReader(""), Stdout: &testlog.Buffer{}, Stderr: stderr, Getenv: func(k string) string { return env[k] }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	re := regexp.MustCompile(`ironpool serving on (\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start: %s", stderr.String())
	return ""
}

// TestTLS starts `serve --tls-cert --tls-key` with a self-signed
// certificate and checks that the CLI refuses it without --ca-file, with a
// message that says the certificate is the problem, and accepts it with
// --ca-file or an explicit --insecure.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	data := filepath.Join(dir, "data")
	url := serveCLI(t, nil, "--data-dir", data, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("serve with --tls-cert reports %s, want https", url)
	}
	tok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"IRONPOOL_URL": url, "IRONPOOL_TOKEN": strings.TrimSpace(string(tok))}

	code, _, errOut := runCLI(t, env, "status")
	if code == 0 {
		t.Fatal("the CLI accepted a self-signed certificate without --ca-file")
	}
	if !strings.Contains(errOut, "certificate") {
		t.Errorf("the refusal does not say the certificate is the problem: %s", errOut)
	}
	if !strings.Contains(errOut, "--ca-file") || strings.Contains(errOut, "running?") {
		t.Errorf("the hint should point at --ca-file, not at a server that is not running: %s", errOut)
	}

	if code, _, errOut := runCLI(t, env, "status", "--ca-file", certFile); code != 0 {
		t.Errorf("with --ca-file: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, env, "status", "--insecure"); code != 0 {
		t.Errorf("with --insecure: exit %d: %s", code, errOut)
	}

	// Plain HTTP to the TLS port gets nowhere near the API.
	plain := map[string]string{"IRONPOOL_URL": strings.Replace(url, "https://", "http://", 1), "IRONPOOL_TOKEN": env["IRONPOOL_TOKEN"]}
	if code, _, _ := runCLI(t, plain, "status"); code == 0 {
		t.Error("plain HTTP to the TLS listener worked")
	}
	// And https:// to a plain listener says so instead of "not running".
	plainURL := serveCLI(t, nil, "--data-dir", filepath.Join(dir, "plain"))
	code, _, errOut = runCLI(t, map[string]string{"IRONPOOL_URL": strings.Replace(plainURL, "http://", "https://", 1)}, "status")
	if code == 0 || !strings.Contains(errOut, "plain HTTP") {
		t.Errorf("https:// to a plain HTTP server: exit %d: %s", code, errOut)
	}
}
