# syntax=docker/dockerfile:1
# dc-webhook image: a static binary on a distroless base, running as the
# unprivileged user 65532, with no shell or package manager.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# Only what dc-webhook is built from: the build context may hold the
# control-plane cache and other binaries.
COPY policy/ policy/
COPY webhook/ webhook/
COPY cmd/dc-webhook/ cmd/dc-webhook/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/dc-webhook ./cmd/dc-webhook

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dc-webhook /dc-webhook
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["/dc-webhook"]
