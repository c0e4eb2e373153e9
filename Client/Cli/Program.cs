using KvReplica.Client.Cli;

// The CLI proper lives in Cli/; this only wires it to the process's console.
return await CliApplication.RunAsync(args, Console.In, Console.Out, Console.Error, stdinIsTerminal: !Console.IsInputRedirected, CancellationToken.None);
