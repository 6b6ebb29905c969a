# cinder-provisioner container image: a static binary on distroless.
#
#   docker build -t ghcr.io/cinder-provisioner/cinder-provisioner:v0.1.0 \
#     --build-arg VERSION=v0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 ...   # multi-arch
#
# Not built in this repository's CI or on the development machine (there is
# no container engine there); `make build` compiles the same binary the same
# way.

# Build on the builder's own platform and cross-compile: no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# Printed by --version; empty: "devel".
ARG VERSION=
WORKDIR /src
# Modules first, so that a source change reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY internal/ internal/
# Static (no cgo: distroless/static has no libc), reproducible paths.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/cinder-provisioner ./cmd/cinder-provisioner

# CA certificates (for Keystone and Cinder over TLS) and /etc/passwd with
# the nonroot user, nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cinder-provisioner /cinder-provisioner
# 65532 = nonroot; deploy/ runs it with runAsNonRoot and a read-only root.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/cinder-provisioner"]
