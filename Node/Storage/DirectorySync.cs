using System.Runtime.InteropServices;

namespace KvReplica.Node.Storage;

/// <summary>
/// fsync of a directory, so that a file created or renamed in it survives a power loss. .NET has
/// no API for it, so this calls the C library (Linux and other Unix systems only; a no-op elsewhere).
/// </summary>
internal static partial class DirectorySync
{
    private const int ReadOnly = 0;

    public static void Fsync(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
        {
            return;
        }
        int fd = Open(directory, ReadOnly);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open directory {directory} to fsync it (errno {errno})", errno);
        }
        try
        {
            if (FileSync(fd) != 0)
            {
                // The errno as HResult, as .NET's own file errors carry it (DiskFull reads it).
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of directory {directory} failed (errno {errno})", errno);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FileSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
