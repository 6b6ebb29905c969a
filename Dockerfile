# syntax=docker/dockerfile:1
# cinder-provisioner container image, for those who build with a container
# engine:
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     -t ghcr.io/cinder-provisioner/cinder-provisioner:v0.1.0 .
#
# UNTESTED HERE: this repository's CI and development machines have no
# container engine. The image that is built, run and released is `make image`
# (hack/image.sh and hack/image, with go-containerregistry; no engine needed),
# and this file makes the same one: an empty base, the same /etc/passwd and
# /etc/group (hack/image/rootfs), Debian's CA bundle, a static binary, user
# 65532, the same labels. hack/image/build_test.go reads this file and fails
# when it drifts from hack/image; nothing proves it builds.

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
# Static (no cgo: there is no libc in the image), reproducible paths.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/cinder-provisioner ./cmd/cinder-provisioner
RUN mkdir -p /out/tmp /out/home/nonroot

# Nothing but these files: no shell, no package manager.
FROM scratch
ARG VERSION=
ARG REVISION=
ARG SOURCE=https://github.com/cinder-provisioner/cinder-provisioner
COPY hack/image/rootfs/etc/passwd hack/image/rootfs/etc/group /etc/
# Debian's bundle, as `make image` ships the build machine's (Debian 12).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chmod=1777 /out/tmp /tmp
COPY --from=build --chown=65532:65532 --chmod=0700 /out/home/nonroot /home/nonroot
COPY --from=build /out/cinder-provisioner /cinder-provisioner
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title=cinder-provisioner \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.revision=${REVISION}
# 65532 = nonroot (hack/image/rootfs/etc/passwd); deploy/ runs it with
# runAsNonRoot and a read-only root.
USER 65532:65532
EXPOSE 8080/tcp
ENTRYPOINT ["/cinder-provisioner"]
