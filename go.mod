module github.com/modpipe/modpipe

go 1.26
