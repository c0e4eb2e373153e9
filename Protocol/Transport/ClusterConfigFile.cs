using KvReplica.Protocol.Config;

namespace KvReplica.Transport;

/// <summary>
/// Reads cluster.json from disk into a validated <see cref="ClusterConfig"/>, for the daemon and
/// the client alike. The parsing and every check are in Protocol's <see cref="ClusterConfigReader"/>,
/// which does no I/O; this is only the file read, beside the rest of the transport's I/O.
/// </summary>
public static class ClusterConfigFile
{
    /// <summary>Throws <see cref="ConfigException"/> with a one-line reason for any unusable file.</summary>
    public static ClusterConfig Load(string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new ConfigException($"'{path}' is not a usable file path ({e.Message})");
        }
        if (!File.Exists(full))
        {
            throw new ConfigException(Directory.Exists(full) ? $"'{path}' is a directory, not a cluster.json file" : $"config file '{path}' not found");
        }
        byte[] text;
        try
        {
            text = File.ReadAllBytes(full);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new ConfigException($"{path} cannot be read: {e.Message}");
        }
        return ClusterConfigReader.Parse(text, path);
    }
}
