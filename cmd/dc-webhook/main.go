// Command dc-webhook is the PlacementPolicy admission webhook.
package main

func main() {}
