package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/healthz"
	apiserveroptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes/scheme"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/metrics/legacyregistry"
	netutils "k8s.io/utils/net"
)

// DefaultSecurePort is the rebalancer's HTTPS port (kube-scheduler's is 10259).
const DefaultSecurePort = 10260

// servingOptions are kube-scheduler's secure-serving flags: HTTPS only (a self-signed
// certificate unless --tls-cert-file is given), /metrics behind delegated authentication
// (TokenReview, client certificates) and authorization (SubjectAccessReview), /healthz,
// /readyz and /livez open. There is no plain-HTTP port.
type servingOptions struct {
	secure *apiserveroptions.SecureServingOptions
	authn  *apiserveroptions.DelegatingAuthenticationOptions
	authz  *apiserveroptions.DelegatingAuthorizationOptions
}

func newServingOptions() *servingOptions {
	s := &servingOptions{
		secure: apiserveroptions.NewSecureServingOptions(),
		authn:  apiserveroptions.NewDelegatingAuthenticationOptions(),
		authz:  apiserveroptions.NewDelegatingAuthorizationOptions(),
	}
	s.secure.BindPort = DefaultSecurePort
	s.secure.ServerCert.CertDirectory = "" // in memory: the chart's root filesystem is read-only
	s.secure.ServerCert.PairName = "spot-rebalancer"
	s.authn.TolerateInClusterLookupFailure = true
	s.authn.RemoteKubeConfigFileOptional = true
	s.authz.RemoteKubeConfigFileOptional = true
	// Health endpoints are open (kubelet probes carry no credentials); everything else is checked.
	s.authz.AlwaysAllowPaths = []string{"/healthz", "/readyz", "/livez"}
	return s
}

// addFlags adds kube-scheduler's sections: secure serving, authentication, authorization.
func (s *servingOptions) addFlags(fss *cliflag.NamedFlagSets) {
	s.secure.AddFlags(fss.FlagSet("secure serving"))
	s.authn.AddFlags(fss.FlagSet("authentication"))
	s.authz.AddFlags(fss.FlagSet("authorization"))
	fss.FlagSet("authentication").Lookup("authentication-kubeconfig").Usage = "kubeconfig allowed to create tokenreviews.authentication.k8s.io and read kube-system/extension-apiserver-authentication; default: the controllers' own (--kubeconfig, else in-cluster)."
	fss.FlagSet("authorization").Lookup("authorization-kubeconfig").Usage = "kubeconfig allowed to create subjectaccessreviews.authorization.k8s.io; default: the controllers' own (--kubeconfig, else in-cluster)."
}

func (s *servingOptions) enabled() bool { return s.secure.BindPort != 0 }

func (s *servingOptions) validate() []error {
	var errs []error
	errs = append(errs, s.secure.Validate()...)
	// apiserver checks these only when it binds; name the flag at start-up instead.
	cert, key := s.secure.ServerCert.CertKey.CertFile, s.secure.ServerCert.CertKey.KeyFile
	if (cert == "") != (key == "") {
		errs = append(errs, fmt.Errorf("--tls-cert-file, --tls-private-key-file: give both or neither (got %q and %q)", cert, key))
	}
	for flag, path := range map[string]string{"--tls-cert-file": cert, "--tls-private-key-file": key} {
		if path != "" {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", flag, err))
			}
		}
	}
	if _, err := cliflag.TLSVersion(s.secure.MinTLSVersion); err != nil {
		errs = append(errs, fmt.Errorf("--tls-min-version: %w", err))
	}
	if _, err := cliflag.TLSCipherSuites(s.secure.CipherSuites); err != nil {
		errs = append(errs, fmt.Errorf("--tls-cipher-suites: %w", err))
	}
	errs = append(errs, s.authn.Validate()...)
	errs = append(errs, s.authz.Validate()...)
	return errs
}

// start binds the port and serves until stop is closed. The delegated authentication and
// authorization use kubeconfig (the controllers' own credentials) unless
// --authentication-kubeconfig / --authorization-kubeconfig name others; in a pod both fall
// back to the in-cluster ServiceAccount.
func (s *servingOptions) start(kubeconfig string, live, ready []healthz.HealthChecker, stop <-chan struct{}) (stopped <-chan struct{}, err error) {
	if s.authn.RemoteKubeConfigFile == "" {
		s.authn.RemoteKubeConfigFile = kubeconfig
	}
	if s.authz.RemoteKubeConfigFile == "" {
		s.authz.RemoteKubeConfigFile = kubeconfig
	}
	if err := s.secure.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("--cert-dir: creating a self-signed certificate: %w", err)
	}
	var serving *server.SecureServingInfo
	if err := s.secure.ApplyTo(&serving); err != nil {
		return nil, fmt.Errorf("secure serving (--bind-address, --secure-port, --tls-*): %w", err)
	}
	var authn server.AuthenticationInfo
	if err := s.authn.ApplyTo(&authn, serving, nil); err != nil {
		serving.Listener.Close()
		return nil, fmt.Errorf("--authentication-kubeconfig: %w", err)
	}
	var authz server.AuthorizationInfo
	if err := s.authz.ApplyTo(&authz); err != nil {
		serving.Listener.Close()
		return nil, fmt.Errorf("--authorization-kubeconfig: %w", err)
	}
	if authn.Authenticator == nil || authz.Authorizer == nil {
		serving.Listener.Close()
		return nil, errors.New("secure serving: no authenticator or authorizer")
	}
	handler := healthAndMetrics(live, ready)
	// The chain of kube-scheduler's secure port (cmd/kube-scheduler/app/server.go).
	requestInfoResolver := &apirequest.RequestInfoFactory{}
	handler = genericapifilters.WithAuthorization(handler, authz.Authorizer, scheme.Codecs)
	handler = genericapifilters.WithAuthentication(handler, authn.Authenticator, genericapifilters.Unauthorized(scheme.Codecs), nil, nil)
	handler = genericapifilters.WithRequestInfo(handler, requestInfoResolver)
	handler = genericapifilters.WithCacheControl(handler)
	handler = genericfilters.WithHTTPLogging(handler)
	handler = genericfilters.WithPanicRecovery(handler, requestInfoResolver)
	stopped, _, err = serving.Serve(handler, 5*time.Second, stop)
	if err != nil {
		return nil, fmt.Errorf("--bind-address, --secure-port: %w", err)
	}
	return stopped, nil
}

// healthAndMetrics serves /healthz and /livez (the live checks), /readyz (the ready checks),
// each with its per-check sub-paths and ?verbose, and /metrics.
func healthAndMetrics(live, ready []healthz.HealthChecker) http.Handler {
	mux := http.NewServeMux()
	healthz.InstallHandler(mux, live...)
	healthz.InstallLivezHandler(mux, live...)
	healthz.InstallReadyzHandler(mux, ready...)
	mux.Handle("/metrics", legacyregistry.Handler())
	return mux
}
