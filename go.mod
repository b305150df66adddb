module github.com/hushmsg/hush

go 1.26
