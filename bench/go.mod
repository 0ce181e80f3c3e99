module github.com/modpipe/modpipe/bench

go 1.26

require (
	github.com/goyek/goyek/v3 v3.0.0
	github.com/modpipe/modpipe v0.0.0-00010101000000-000000000000
)

replace github.com/modpipe/modpipe => ../
