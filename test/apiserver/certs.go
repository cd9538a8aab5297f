package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// vmHostAddress is where the test VM reaches the host's loopback (a slirp
// guestfwd); the serving certificate always covers it so one server can be
// used from the host and from the VM with the same CA.
const vmHostAddress = "10.0.2.100"

// credentials are the files kube-apiserver needs, generated with Go crypto so
// that no openssl is needed. ECDSA keys: instant to generate, and kube-apiserver
// accepts them for serving and for ServiceAccount tokens (ES256).
type credentials struct {
	caPEM                      []byte
	certFile, keyFile          string // serving certificate signed by the CA
	saPublicFile, saSigningKey string
	tokenFile, adminToken      string
}

func writeCredentials(dir string, o Options) (*credentials, error) {
	c := &credentials{
		certFile:     filepath.Join(dir, "apiserver.crt"),
		keyFile:      filepath.Join(dir, "apiserver.key"),
		saPublicFile: filepath.Join(dir, "sa.pub"),
		saSigningKey: filepath.Join(dir, "sa.key"),
		tokenFile:    filepath.Join(dir, "tokens.csv"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	now := time.Now().Add(-time.Hour) // tolerate small clock differences (VM)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ipvs-proxy-test-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	ips, err := servingIPs(o)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating serving certificate: %w", err)
	}
	// The CA goes after the leaf so clients that get the chain can verify it.
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c.caPEM...)
	if err := os.WriteFile(c.certFile, chain, 0o600); err != nil {
		return nil, fmt.Errorf("writing serving certificate: %w", err)
	}
	if err := writeECKey(c.keyFile, key); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating service account key: %w", err)
	}
	if err := writeECKey(c.saSigningKey, saKey); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encoding service account public key: %w", err)
	}
	if err := os.WriteFile(c.saPublicFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return nil, fmt.Errorf("writing service account public key: %w", err)
	}

	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("generating admin token: %w", err)
	}
	c.adminToken = hex.EncodeToString(tok)
	// token,user,uid,"groups": system:masters bypasses RBAC (cluster-admin).
	line := fmt.Sprintf("%s,test-admin,test-admin,\"system:masters\"\n", c.adminToken)
	if err := os.WriteFile(c.tokenFile, []byte(line), 0o600); err != nil {
		return nil, fmt.Errorf("writing token file: %w", err)
	}
	return c, nil
}

func writeECKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key for %s: %w", path, err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	return nil
}

// servingIPs are the addresses clients dial: loopback, the advertise address,
// the VM's view of the host, and the first IP of each service CIDR (the
// kubernetes.default Service, which in-cluster clients of the proxy use).
func servingIPs(o Options) ([]net.IP, error) {
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, net.ParseIP(vmHostAddress)}
	adv := net.ParseIP(o.AdvertiseAddress)
	if adv == nil {
		return nil, fmt.Errorf("advertise address %q is not an IP", o.AdvertiseAddress)
	}
	ips = append(ips, adv)
	for _, s := range strings.Split(o.ServiceCIDRs, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("service CIDR %q: %w", s, err)
		}
		ips = append(ips, net.IP(p.Masked().Addr().Next().AsSlice()))
	}
	return ips, nil
}
