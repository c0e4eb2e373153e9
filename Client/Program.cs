// Placeholder entry point; the client CLI replaces this file.
Console.Error.WriteLine("usage: client <config> [get|put|delete|bench] ...");
return 2;
