// Package version carries the build's version, stamped by the Makefile and the Dockerfile:
//
//	-ldflags "-X github.com/spot-scheduler/spot-scheduler/pkg/version.Version=v0.1.0"
package version

// Version of spot-scheduler; "dev" when built without the Makefile.
var Version = "dev"
