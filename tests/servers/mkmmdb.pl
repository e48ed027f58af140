#!/usr/bin/perl
# Writes a MaxMind DB file for the tests with MaxMind's own writer (Debian package
# libmaxmind-db-writer-perl), so that the collector reads files in the real format:
#
#   mkmmdb.pl OUT.mmdb NETWORK KEY=VALUE[,KEY=VALUE...] [NETWORK KEY=VALUE...]...
#
# Keys: asn (autonomous_system_number, uint32), org (autonomous_system_organization),
# iso (country.iso_code, as GeoLite2 and DB-IP write it), cc (country_code, as ip-location-db's
# MMDB files write it). Exit 77 when the writer is not installed.
use strict;
use warnings;
use Encode qw(decode);

if (!eval { require MaxMind::DB::Writer::Tree; 1 }) {
    print STDERR "mkmmdb.pl: MaxMind::DB::Writer is not installed (libmaxmind-db-writer-perl)\n";
    exit 77;
}
die "usage: $0 OUT.mmdb NETWORK KEY=VALUE,... [NETWORK KEY=VALUE,...]...\n"
    if @ARGV < 3 || @ARGV % 2 == 0;
my $out = shift @ARGV;
my %types = (
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
    country                        => 'map',
    iso_code                       => 'utf8_string',
    country_code                   => 'utf8_string',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'Vantage-Test',
    languages                => ['en'],
    description              => { en => 'vantage test data' },
    map_key_type_callback    => sub { $types{ $_[0] } },
    remove_reserved_networks => 0,
);
while (@ARGV) {
    my ($net, $kv) = splice(@ARGV, 0, 2);
    my %rec;
    for my $pair (split /,/, decode('UTF-8', $kv)) {
        my ($k, $v) = split /=/, $pair, 2;
        if    ($k eq 'asn') { $rec{autonomous_system_number}       = $v + 0 }
        elsif ($k eq 'org') { $rec{autonomous_system_organization} = $v }
        elsif ($k eq 'iso') { $rec{country}                        = { iso_code => $v } }
        elsif ($k eq 'cc')  { $rec{country_code}                   = $v }
        else                { die "mkmmdb.pl: unknown key $k\n" }
    }
    $tree->insert_network($net, \%rec);
}
open my $fh, '>:raw', $out or die "mkmmdb.pl: $out: $!\n";
$tree->write_tree($fh);
close $fh or die "mkmmdb.pl: $out: $!\n";
