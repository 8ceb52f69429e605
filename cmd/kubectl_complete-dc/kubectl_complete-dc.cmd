@echo off
rem kubectl_complete-dc completes "kubectl dc ..." on Windows: kubectl runs it
rem with the words after the plugin name and reads the candidates it prints.
kubectl-dc.exe __complete %*
