// Placeholder entry point; the daemon replaces this file.
Console.Error.WriteLine("usage: node <id> <config>");
return 2;
