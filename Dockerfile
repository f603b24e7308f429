# Multi-stage build to a distroless, non-root image. The version is stamped via ldflags.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# -trimpath for the release binaries only: local builds leave it out so that they share one
# build cache with the tests and the control plane (docs/testing.md).
RUN GOFLAGS=-trimpath make build VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/spot-scheduler /usr/local/bin/spot-scheduler
# The controllers (deletion cost, rebalancer): same image, the chart runs it as its command.
COPY --from=build /src/bin/spot-rebalancer /usr/local/bin/spot-rebalancer
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/spot-scheduler"]
