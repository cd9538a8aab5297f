package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

func main() {
	code, err := vm.Run(context.Background(), vm.Config{Command: os.Args[1:], Stdout: os.Stdout})
	fmt.Println("code", code, "err", err)
}
