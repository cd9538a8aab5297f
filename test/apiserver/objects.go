package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	proxyNamespace      = "kube-system"
	proxyServiceAccount = "ipvs-proxy"
	readyTimeout        = 60 * time.Second
	// proxyTokenSeconds: long enough that no test or bench outlives it.
	proxyTokenSeconds = 365 * 24 * 3600
)

// WaitServiceCIDRReady blocks until a Service with a ClusterIP and a NodePort
// can be created (and deletes it). For the first seconds after /readyz (and
// after a restart) creates fail with "range is full" or "cannot allocate
// resources of type servicenodeportallocations at this time" while the
// allocators sync; Start and Restart call this, so tests need not retry.
func (s *Server) WaitServiceCIDRReady(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	probe := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "ipvs-proxy-probe-", Namespace: metav1.NamespaceDefault},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}},
		},
	}
	var created *corev1.Service
	err := retry(ctx, "creating a probe Service", func(ctx context.Context) (err error) {
		created, err = s.client.CoreV1().Services(probe.Namespace).Create(ctx, probe, metav1.CreateOptions{})
		return err
	})
	if err == nil {
		err = retry(ctx, "deleting the probe Service", func(ctx context.Context) error {
			err := s.client.CoreV1().Services(created.Namespace).Delete(ctx, created.Name, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
	}
	if err != nil {
		s.fatal(t, "service allocation never became ready: %v", err)
	}
}

// applyRBAC creates the objects of manifests/rbac.yaml, then waits until the
// authorizer (fed by informers) lets the ServiceAccount list Services, so a
// client started right after Start is not refused.
func (s *Server) applyRBAC(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	ctx := context.Background()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading a document of %s: %w", path, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return fmt.Errorf("decoding %s: %w", path, err)
		}
		var create func(context.Context) error
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			create = func(ctx context.Context) error {
				_, err := s.client.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
				return err
			}
		case *rbacv1.ClusterRole:
			create = func(ctx context.Context) error {
				_, err := s.client.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
				return err
			}
		case *rbacv1.ClusterRoleBinding:
			create = func(ctx context.Context) error {
				_, err := s.client.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported kind %s (extend applyRBAC)", path, gvk)
		}
		// kube-system is created by a post-start hook that may not have run yet.
		if err := retry(ctx, "creating "+gvk.Kind, create); err != nil {
			return err
		}
	}

	return s.waitProxyAuthorized(ctx)
}

// proxyAccess is what the proxy's ClusterRole grants and the tests use at
// once: each must be allowed before a test may act as the proxy.
var proxyAccess = []authorizationv1.ResourceAttributes{
	{Verb: "list", Resource: "services"},
	{Verb: "watch", Resource: "nodes"},
	{Verb: "list", Group: "discovery.k8s.io", Resource: "endpointslices"},
	{Verb: "create", Resource: "events", Namespace: "default"},
}

// waitProxyAuthorized waits until the authorizer allows the proxy's
// ServiceAccount everything in proxyAccess. RBAC bindings reach the
// authorizer through an informer, so a just-applied binding, and every
// binding on a just-restarted server, is refused for a moment.
func (s *Server) waitProxyAuthorized(ctx context.Context) error {
	for _, attrs := range proxyAccess {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + proxyNamespace + ":" + proxyServiceAccount,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + proxyNamespace, "system:authenticated"},
			ResourceAttributes: &attrs,
		}}
		err := retry(ctx, "waiting for the RBAC rules to apply", func(ctx context.Context) error {
			res, err := s.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if !res.Status.Allowed {
				return apierrors.NewServiceUnavailable(fmt.Sprintf("%s %s not allowed yet: %s", attrs.Verb, attrs.Resource, res.Status.Reason)) // retried
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ProxyKubeconfig writes a kubeconfig for the ServiceAccount
// kube-system/ipvs-proxy (a TokenRequest token valid for a year) and returns
// its path. server defaults to s.URL; the VM passes
// https://10.0.2.100:<s.Port>, which the serving certificate covers, so the
// file carries the CA instead of skipping verification.
func (s *Server) ProxyKubeconfig(t testing.TB, server string) string {
	t.Helper()
	if server == "" {
		server = s.URL
	}
	expiry := int64(proxyTokenSeconds)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}
	var tok *authenticationv1.TokenRequest
	err := retry(context.Background(), "requesting a token", func(ctx context.Context) (err error) {
		tok, err = s.client.CoreV1().ServiceAccounts(proxyNamespace).CreateToken(ctx, proxyServiceAccount, req, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		s.fatal(t, "token for %s/%s: %v", proxyNamespace, proxyServiceAccount, err)
	}
	return s.writeKubeconfig(t, server, proxyServiceAccount, tok.Status.Token, proxyNamespace)
}

// AdminKubeconfig writes a kubeconfig with the admin's token for server
// (default s.URL) and returns its path: what a test itself uses to create
// objects, from the host or from the VM.
func (s *Server) AdminKubeconfig(t testing.TB, server string) string {
	t.Helper()
	if server == "" {
		server = s.URL
	}
	return s.writeKubeconfig(t, server, "admin", s.Admin.BearerToken, "")
}

func (s *Server) writeKubeconfig(t testing.TB, server, user, token, namespace string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: s.creds.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[user] = &clientcmdapi.Context{Cluster: "test", AuthInfo: user, Namespace: namespace}
	cfg.CurrentContext = user
	path := filepath.Join(s.Dir, fmt.Sprintf("%s-%d.kubeconfig", user, s.nconfig.Add(1)))
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		s.fatal(t, "writing %s: %v", path, err)
	}
	return path
}

// retry calls fn until it succeeds, fails permanently, or readyTimeout passes.
func retry(ctx context.Context, what string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if !transient(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: still failing after %v: %w", what, readyTimeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// transient reports errors a just-started server returns while its
// allocators, namespaces and admission informers catch up.
func transient(err error) bool {
	switch {
	case apierrors.IsInternalError(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err):
		return true
	case apierrors.IsNotFound(err): // namespace not created yet
		return true
	case apierrors.IsForbidden(err): // admission: "not yet ready to handle request"
		return strings.Contains(err.Error(), "not yet ready")
	}
	var status apierrors.APIStatus
	return !errors.As(err, &status) // connection errors, not an answer from the server
}
