# A small, non-root image of tiktok-webhook.
#
#   docker build -t tiktok-webhook .
#   docker run -d --name tiktok-webhook -p 127.0.0.1:3001:3001 \
#     -v tiktok-webhook-data:/data --env-file /etc/tiktok-webhook/env tiktok-webhook
#
# Put a TLS-terminating proxy in front (see README, "Deploying").

# ---- build -------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# Dependencies first, in their own layer: a change to the sources does not
# rebuild them. The placeholder sources are replaced right after.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# sqlx embeds the migrations at compile time.
COPY migrations migrations
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && strip target/release/tiktok-webhook \
    && mkdir -p /data

# ---- run ---------------------------------------------------------------
# glibc and libgcc only (SQLite is compiled in, TLS is rustls); no shell, no
# package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/tiktok-webhook /usr/local/bin/tiktok-webhook
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
WORKDIR /data
ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=3001 \
    DATABASE_URL=sqlite:///data/tiktok-webhook.db \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 3001
# docker stop sends SIGTERM: requests in flight finish, the writer commits,
# running jobs give their lease back (SHUTDOWN_TIMEOUT, 30 s by default;
# give `docker stop -t 40`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tiktok-webhook"]
CMD ["serve"]
