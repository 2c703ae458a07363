# responder: a static binary on a distroless base, running as a non-root user, for linux/amd64
# and linux/arm64.
# Build: docker build -t responder .    Run: docker run --rm -p 8080:8080 responder
# Both platforms, from either: docker buildx build --platform linux/amd64,linux/arm64 -t IMAGE --push .

# The builder runs on the build machine's own platform and cross-compiles for the target's
# (deploy/build-static: the Rust target, its cross linker, crt-static): no emulation.
FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS builder
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY deploy/build-static deploy/build-static
# The dependencies get a layer of their own, built against placeholder sources: changing the
# project's code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && deploy/build-static "$TARGETARCH" \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && deploy/build-static "$TARGETARCH" /responder

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /responder /responder
COPY config/responder.toml /etc/responder/responder.toml
ENV RESPONDER_CONFIG=/etc/responder/responder.toml
# distroless's "nonroot" user; it needs no capability to listen on 8080.
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 CMD ["/responder", "healthcheck"]
ENTRYPOINT ["/responder"]
