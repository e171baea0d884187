# miffy tasks. `just` installs with: npm install -g rust-just

# demo upstreams, an embedded Kafka-protocol broker and the proxy
demo:
    go run ./cmd/miffy demo

# the test suite (what CI runs)
test:
    go test -race ./...

# vet and format check
lint:
    go vet ./...
    test -z "$(gofmt -l $(git ls-files '*.go'))"

# Go micro-benchmarks of the hot path
bench-go:
    go test -run='^$' -bench=. -benchmem ./...

# side-by-side benchmark against direct and nginx (proxy_pass, mirror) with wrk;
# writes bench/RESULTS.md. Quicker: BENCH_DURATION=5s BENCH_RUNS=3 just bench
# Body sizes (100 B, 10 KB, 100 KB), miffy shadow against nginx + mirror: BENCH_MODES=bodies just bench
bench:
    bash bench/run.sh
    bash bench/h2.sh

build:
    go build -o bin/miffy ./cmd/miffy

# soak: SOAK_MINUTES (default 10) of steady load with a flapping candidate and a
# broker restart against the built binary; prints the figures. Not part of CI.
soak:
    bash soak/run.sh
