// Package version carries the build's version, stamped by the Makefile and the Dockerfile:
//
//	-ldflags "-X github.com/spot-scheduler/spot-scheduler/pkg/version.Version=v0.1.0"
package version

import (
	k8sversion "k8s.io/component-base/version"
)

// Version of spot-scheduler; "dev" when built without the Makefile.
var Version = "dev"

// String is what --version prints: the product's version and the Kubernetes version its
// scheduler framework is built on.
func String() string {
	return "spot-scheduler " + Version + " (built on Kubernetes " + k8sversion.Get().GitVersion + ")"
}
