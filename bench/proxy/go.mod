module github.com/verityhq/verity/bench/proxy

go 1.26.8
