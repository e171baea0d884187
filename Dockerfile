# Build: docker build -t miffy .
# The Go version is go.mod's, to the patch (TestContainerFiles checks it).
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/miffy ./cmd/miffy && \
    CGO_ENABLED=0 go build -trimpath -o /out/demo ./examples/demo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/miffy /out/demo /usr/local/bin/
EXPOSE 8080 9000
ENTRYPOINT ["/usr/local/bin/miffy"]
