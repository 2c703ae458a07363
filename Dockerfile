# responder: a static binary on a distroless base, running as a non-root user.
# Build: docker build -t responder .    Run: docker run --rm -p 8080:8080 responder

FROM rust:1.95-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The dependencies get a layer of their own, built against placeholder sources: changing the
# project's code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked \
        --target "$(rustc -vV | sed -n 's/^host: //p')" \
    && rm -rf src
COPY src ./src
# A statically linked glibc binary (crt-static): it needs nothing from the final image.
RUN touch src/main.rs src/lib.rs \
    && target="$(rustc -vV | sed -n 's/^host: //p')" \
    && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" \
    && cp "target/$target/release/responder" /responder

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
